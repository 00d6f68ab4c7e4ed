// Package stats summarises an experiment: per arm the mean of a score over
// seeds with its confidence interval, the paired differences between arms
// over the seeds they share, and a verdict in words. Intervals are Student t
// intervals (mean ± t(level, n-1) · s/√n, s the sample standard deviation),
// computed with gonum's stat and distuv; paired differences are t intervals
// of the per-seed differences, which removes the seed-to-seed variation the
// arms share (same generation 0, same items).
package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Method names the interval, for reports.
const Method = "Student t interval over seeds (paired t for differences)"

// Observation is one arm's score on one seed.
type Observation struct {
	Arm   string
	Seed  uint64
	Score float64
}

// Interval is a mean with its confidence interval. With fewer than 2
// values Low and High are NaN (no spread to estimate).
type Interval struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Half is the interval's half-width.
func (iv Interval) Half() float64 { return (iv.High - iv.Low) / 2 }

// ArmSummary is one arm over its seeds.
type ArmSummary struct {
	Arm   string   `json:"arm"`
	Seeds []uint64 `json:"seeds"`
	Interval
}

// Paired is A - B over the seeds both have.
type Paired struct {
	A     string   `json:"a"`
	B     string   `json:"b"`
	Seeds []uint64 `json:"seeds"`
	Interval
	// Distinguishable: the interval excludes 0.
	Distinguishable bool `json:"distinguishable"`
}

// Table is the whole summary.
type Table struct {
	Level   float64      `json:"level"`
	Method  string       `json:"method"`
	Arms    []ArmSummary `json:"arms"`
	Pairs   []Paired     `json:"pairs"`
	Winner  string       `json:"winner"`
	Verdict string       `json:"verdict"`
}

// MeanCI is the mean of x and its t interval at level (e.g. 0.95).
func MeanCI(x []float64, level float64) (Interval, error) {
	if !(level > 0 && level < 1) {
		return Interval{}, fmt.Errorf("stats: level %v, want within (0, 1)", level)
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Interval{}, fmt.Errorf("stats: non-finite value %v", v)
		}
	}
	iv := Interval{N: len(x), Low: math.NaN(), High: math.NaN()}
	if len(x) == 0 {
		iv.Mean = math.NaN()
		return iv, nil
	}
	iv.Mean = stat.Mean(x, nil)
	if len(x) < 2 {
		return iv, nil
	}
	iv.SD = stat.StdDev(x, nil) // n-1 in the denominator
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(x) - 1)}.Quantile(1 - (1-level)/2)
	half := t * iv.SD / math.Sqrt(float64(len(x)))
	iv.Low, iv.High = iv.Mean-half, iv.Mean+half
	return iv, nil
}

// Summarise builds the table for arms (in that order) from the
// observations: every arm needs at least one, an arm and seed at most one.
func Summarise(arms []string, obs []Observation, level float64) (Table, error) {
	tb := Table{Level: level, Method: Method}
	if len(arms) == 0 {
		return tb, errors.New("stats: no arms")
	}
	score := map[string]map[uint64]float64{}
	var seeds []uint64
	for _, a := range arms {
		if score[a] != nil {
			return tb, fmt.Errorf("stats: arm %q listed twice", a)
		}
		score[a] = map[uint64]float64{}
	}
	for _, o := range obs {
		m, ok := score[o.Arm]
		if !ok {
			return tb, fmt.Errorf("stats: observation of unknown arm %q", o.Arm)
		}
		if _, dup := m[o.Seed]; dup {
			return tb, fmt.Errorf("stats: arm %q has two scores for seed %d", o.Arm, o.Seed)
		}
		m[o.Seed] = o.Score
		if !slices.Contains(seeds, o.Seed) {
			seeds = append(seeds, o.Seed)
		}
	}
	slices.Sort(seeds)
	values := func(a string, only []uint64) ([]uint64, []float64) {
		var ss []uint64
		var xs []float64
		for _, s := range only {
			if v, ok := score[a][s]; ok {
				ss, xs = append(ss, s), append(xs, v)
			}
		}
		return ss, xs
	}
	for _, a := range arms {
		ss, xs := values(a, seeds)
		if len(xs) == 0 {
			return tb, fmt.Errorf("stats: arm %q has no scores", a)
		}
		iv, err := MeanCI(xs, level)
		if err != nil {
			return tb, fmt.Errorf("arm %q: %w", a, err)
		}
		tb.Arms = append(tb.Arms, ArmSummary{Arm: a, Seeds: ss, Interval: iv})
	}
	for i, a := range arms {
		for _, b := range arms[i+1:] {
			p, err := paired(score, a, b, seeds, level)
			if err != nil {
				return tb, err
			}
			tb.Pairs = append(tb.Pairs, p)
		}
	}
	tb.Winner, tb.Verdict = verdict(tb, score, seeds)
	return tb, nil
}

func paired(score map[string]map[uint64]float64, a, b string, seeds []uint64, level float64) (Paired, error) {
	p := Paired{A: a, B: b}
	var d []float64
	for _, s := range seeds {
		va, oka := score[a][s]
		vb, okb := score[b][s]
		if oka && okb {
			p.Seeds = append(p.Seeds, s)
			d = append(d, va-vb)
		}
	}
	iv, err := MeanCI(d, level)
	if err != nil {
		return p, fmt.Errorf("%s - %s: %w", a, b, err)
	}
	p.Interval = iv
	p.Distinguishable = iv.N >= 2 && (iv.Low > 0 || iv.High < 0)
	return p, nil
}

// verdict names the arm with the highest mean and says, against every other
// arm, whether its paired advantage is distinguishable from noise.
func verdict(tb Table, score map[string]map[uint64]float64, seeds []uint64) (string, string) {
	best := tb.Arms[0]
	for _, a := range tb.Arms[1:] {
		if a.Mean > best.Mean {
			best = a
		}
	}
	if len(tb.Arms) == 1 {
		return best.Arm, fmt.Sprintf("%s is the only arm: mean %.4f over %d seeds; nothing to compare.", best.Arm, best.Mean, best.N)
	}
	var beaten, tied []string
	for _, o := range tb.Arms {
		if o.Arm == best.Arm {
			continue
		}
		p, _ := paired(score, best.Arm, o.Arm, seeds, tb.Level)
		desc := fmt.Sprintf("%s (%+.4f, %g%% CI [%+.4f, %+.4f], %d seeds)", o.Arm, p.Mean, 100*tb.Level, p.Low, p.High, p.N)
		if p.N < 2 {
			desc = fmt.Sprintf("%s (%+.4f over %d shared seed: no interval)", o.Arm, p.Mean, p.N)
		}
		if p.Distinguishable && p.Low > 0 {
			beaten = append(beaten, desc)
		} else {
			tied = append(tied, desc)
		}
	}
	if len(tied) == 0 {
		return best.Arm, fmt.Sprintf("%s won: its held-out score beats every other arm by more than noise — %s.", best.Arm, strings.Join(beaten, "; "))
	}
	s := fmt.Sprintf("%s has the highest mean held-out score (%.4f), but its lead is NOT distinguishable from noise against %s", best.Arm, best.Mean, strings.Join(tied, "; "))
	if len(beaten) > 0 {
		s += fmt.Sprintf("; it does beat %s", strings.Join(beaten, "; "))
	}
	return best.Arm, s + "."
}
