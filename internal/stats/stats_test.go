package stats

import (
	"math"
	"strings"
	"testing"
)

// t(0.975, 2 degrees of freedom) from a printed table of Student's t.
const t975df2 = 4.302652729749464

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %.12f, want %.12f", what, got, want)
	}
}

// A small fixed table, worked by hand:
//
//	seed   A     B     C
//	1     0.50  0.40  0.30
//	2     0.60  0.45  0.35
//	3     0.70  0.65  0.40
//
// A: mean 0.6, s = 0.1; B: mean 0.5, s = sqrt(0.035/2); C: mean 0.35, s = 0.05.
// A-B per seed 0.10, 0.15, 0.05: mean 0.1, s 0.05, half 4.3027·0.05/√3 = 0.1242 → [-0.024, 0.224] holds 0.
// A-C per seed 0.20, 0.25, 0.30: mean 0.25, s 0.05 → [0.1258, 0.3742] excludes 0.
func TestSummariseAgainstHandComputedValues(t *testing.T) {
	obs := []Observation{
		{"A", 1, 0.50}, {"A", 2, 0.60}, {"A", 3, 0.70},
		{"B", 1, 0.40}, {"B", 2, 0.45}, {"B", 3, 0.65},
		{"C", 3, 0.40}, {"C", 1, 0.30}, {"C", 2, 0.35},
	}
	tb, err := Summarise([]string{"A", "B", "C"}, obs, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	se := func(sd float64) float64 { return t975df2 * sd / math.Sqrt(3) }
	a, b, c := tb.Arms[0], tb.Arms[1], tb.Arms[2]
	near(t, "A mean", a.Mean, 0.6)
	near(t, "A sd", a.SD, 0.1)
	near(t, "A low", a.Low, 0.6-se(0.1))
	near(t, "A high", a.High, 0.6+se(0.1))
	if math.Abs(a.Half()-0.248414) > 1e-6 { // 4.302653 × 0.1 / 1.732051, by hand
		t.Errorf("A half %v", a.Half())
	}
	sdB := math.Sqrt(0.035 / 2)
	near(t, "B mean", b.Mean, 0.5)
	near(t, "B sd", b.SD, sdB)
	near(t, "B low", b.Low, 0.5-se(sdB))
	near(t, "C mean", c.Mean, 0.35)
	near(t, "C high", c.High, 0.35+se(0.05))
	if a.N != 3 || len(c.Seeds) != 3 || c.Seeds[0] != 1 {
		t.Fatalf("counts %+v %+v", a, c)
	}

	if len(tb.Pairs) != 3 || tb.Pairs[0].A != "A" || tb.Pairs[0].B != "B" || tb.Pairs[1].B != "C" || tb.Pairs[2].A != "B" {
		t.Fatalf("pairs %+v", tb.Pairs)
	}
	ab, ac, bc := tb.Pairs[0], tb.Pairs[1], tb.Pairs[2]
	near(t, "A-B mean", ab.Mean, 0.1)
	near(t, "A-B low", ab.Low, 0.1-se(0.05))
	near(t, "A-B high", ab.High, 0.1+se(0.05))
	near(t, "A-C mean", ac.Mean, 0.25)
	near(t, "A-C low", ac.Low, 0.25-se(0.05))
	if ab.Distinguishable || !ac.Distinguishable {
		t.Fatalf("A-B distinguishable %v (want false), A-C %v (want true)", ab.Distinguishable, ac.Distinguishable)
	}
	// B-C: 0.10, 0.10, 0.25: mean 0.15, s = sqrt((0.0025+0.0025+0.01)/2).
	near(t, "B-C mean", bc.Mean, 0.15)
	near(t, "B-C sd", bc.SD, math.Sqrt(0.015/2))

	if tb.Winner != "A" {
		t.Fatalf("winner %s", tb.Winner)
	}
	for _, want := range []string{"A has the highest mean", "NOT distinguishable from noise against B", "it does beat C"} {
		if !strings.Contains(tb.Verdict, want) {
			t.Errorf("verdict %q lacks %q", tb.Verdict, want)
		}
	}

	// Without B, A beats everyone by more than noise.
	tb, err = Summarise([]string{"C", "A"}, obs[:3:3], 0.95)
	if err == nil {
		t.Fatal("an arm without scores must be an error")
	}
	tb, err = Summarise([]string{"C", "A"}, append(append([]Observation(nil), obs[:3]...), obs[6:]...), 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Winner != "A" || !strings.HasPrefix(tb.Verdict, "A won: its held-out score beats every other arm by more than noise") {
		t.Fatalf("verdict %q", tb.Verdict)
	}
	near(t, "C-A mean", tb.Pairs[0].Mean, -0.25)
	if !tb.Pairs[0].Distinguishable {
		t.Fatal("C-A excludes 0")
	}
}

// Pairing uses only the seeds both arms have; one seed gives no interval.
func TestPairsUseSharedSeedsAndBadInput(t *testing.T) {
	obs := []Observation{{"A", 1, 0.5}, {"A", 2, 0.7}, {"B", 2, 0.6}, {"B", 3, 0.1}}
	tb, err := Summarise([]string{"A", "B"}, obs, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	p := tb.Pairs[0]
	if p.N != 1 || len(p.Seeds) != 1 || p.Seeds[0] != 2 || !math.IsNaN(p.Low) || p.Distinguishable {
		t.Fatalf("pair %+v", p)
	}
	near(t, "A-B on seed 2", p.Mean, 0.1)
	if !strings.Contains(tb.Verdict, "NOT distinguishable") {
		t.Fatalf("verdict %q", tb.Verdict)
	}
	for name, o := range map[string][]Observation{
		"unknown arm": {{"Z", 1, 0}},
		"duplicate":   {{"A", 1, 0}, {"A", 1, 0.2}, {"B", 1, 0}},
		"non-finite":  {{"A", 1, math.NaN()}, {"B", 1, 0}},
	} {
		if _, err := Summarise([]string{"A", "B"}, o, 0.95); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := MeanCI([]float64{1, 2}, 1.5); err == nil {
		t.Error("level 1.5 accepted")
	}
	if _, err := Summarise([]string{"A", "A"}, nil, 0.95); err == nil {
		t.Error("an arm listed twice accepted")
	}
}
