package eval

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/eval/task"
)

func one(t *testing.T, lm LM, spec TaskSpec) TaskResult {
	t.Helper()
	rep, err := Evaluate(context.Background(), lm, Suite{Tasks: []TaskSpec{spec}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Tasks[0]
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestAccVersusAccNorm(t *testing.T) {
	lm := &fakeLM{ll: table(map[string]float64{
		// item 1: gold "bbbb" loses on the raw sum, wins per character.
		"Question: Pick the long one\nAnswer:| a":    -2,
		"Question: Pick the long one\nAnswer:| bbbb": -4,
		// item 2: gold "xxx" loses on the raw sum and wins per character
		// (-4.5/3 = -1.5 > -4/2 = -2); "éé" is 4 bytes, so per byte the
		// wrong answer would win (-4/4 = -1).
		" éé":  -4,
		" xxx": -4.5,
	})}
	r := one(t, lm, TaskSpec{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl"})
	if r.Metrics[MetricAcc] != 0 || r.Metrics[MetricAccNorm] != 1 {
		t.Fatalf("metrics %v, want acc 0 acc_norm 1", r.Metrics)
	}
	if r.Metric != MetricAccNorm || r.Score != 1 {
		t.Fatalf("ARC primary metric %s = %v, want acc_norm = 1", r.Metric, r.Score)
	}
	if len(lm.calls) != 1 || len(lm.calls[0]) != 4 {
		t.Fatalf("want one Score call with 4 requests, got %d calls", len(lm.calls))
	}
}

func TestMC2(t *testing.T) {
	lm := &fakeLM{ll: table(map[string]float64{
		"Q: Q1?\nA:| T1": -1, "Q: Q1?\nA:| T2": -2, "Q: Q1?\nA:| F1": -1, "Q: Q1?\nA:| F2": -3,
		// item 2: astronomically unlikely answers; plain exp() would give 0/0.
		"Q: Q2?\nA:| F1": -2000, "Q: Q2?\nA:| T1": -2000 + math.Log(3),
	})}
	r := one(t, lm, TaskSpec{Name: "tqa", Source: "truthfulqa_mc2", Path: "testdata/truthfulqa_mc2.jsonl"})
	e := math.Exp
	want1 := (e(-1) + e(-2)) / (e(-1) + e(-2) + e(-1) + e(-3))
	want2 := 0.75 // 3 : 1
	if !near(r.Score, (want1+want2)/2) || r.Metric != MetricMC2 {
		t.Fatalf("mc2 = %v, want %v", r.Score, (want1+want2)/2)
	}
}

func TestPartialScoring(t *testing.T) {
	lm := &fakeLM{ll: table(map[string]float64{
		"The trophy doesn't fit into the suitcase because the trophy| is too large.":   -3,
		"The trophy doesn't fit into the suitcase because the suitcase| is too large.": -5,
		"Sarah gave Maria a gift because Sarah| was kind to her.":                      -1,
		"Sarah gave Maria a gift because Maria| was kind to her.":                      -2,
	})}
	r := one(t, lm, TaskSpec{Name: "wg", Source: "winogrande", Path: "testdata/winogrande.jsonl"})
	if r.Score != 0.5 || r.N != 2 {
		t.Fatalf("acc = %v over %d, want 0.5 over 2", r.Score, r.N)
	}
	for _, q := range lm.requests() {
		if !strings.HasPrefix(q.Continuation, " ") || strings.Contains(q.Context, "_") {
			t.Fatalf("bad partial request %+v", q)
		}
	}
}

func TestGenerateGSM8K(t *testing.T) {
	outputs := map[string]string{
		"apples":  " 3 + 4 = 7 apples.\n#### 7\n\nQuestion: something else #### 9",
		"book":    " It costs $1,205.",        // strict fails, flexible finds 1,205
		"10 - 12": " #### -2.\n\nQuestion: x", // stop cut, then "-2." matches "-2" after "\.$"
	}
	lm := &fakeLM{gen: func(p string) string {
		for k, v := range outputs {
			if strings.Contains(p, k) {
				return v
			}
		}
		return ""
	}}
	r := one(t, lm, TaskSpec{Name: "gsm8k", Source: "gsm8k", Path: "testdata/gsm8k.jsonl"})
	if !near(r.Metrics[MetricExactMatch], 2.0/3) || r.Metrics[MetricExactFlexible] != 1 {
		t.Fatalf("metrics %v", r.Metrics)
	}
	if r.Metric != MetricExactMatch || !near(r.Score, 2.0/3) {
		t.Fatalf("primary %s = %v", r.Metric, r.Score)
	}
	if lm.gens[0] != "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:" {
		t.Fatalf("prompt %q", lm.gens[0])
	}
}

func TestPerplexity(t *testing.T) {
	lm := &fakeLM{
		ll:     func(ctx, c string) float64 { return -0.5 * float64(len(c)) },
		tokens: func(c string) int { return len(c) },
	}
	r := one(t, lm, TaskSpec{Name: "ppl", Source: SourceJSONL, Kind: task.Perplexity, Path: "testdata/texts.jsonl"})
	if !near(r.Metrics[MetricLoss], 0.5) || !near(r.Score, math.Exp(-0.5)) ||
		!near(r.Metrics[MetricBitsPerByte], 0.5/math.Ln2) || !near(r.Metrics[MetricPerplexity], math.Exp(0.5)) {
		t.Fatalf("metrics %v", r.Metrics)
	}
	for _, q := range lm.requests() {
		if q.Context != "" {
			t.Fatalf("perplexity request with context %q", q.Context)
		}
	}
}

func mmluSpec(seed uint64) TaskSpec {
	return TaskSpec{Name: "mmlu", Source: "mmlu", Path: "testdata/mmlu_test.jsonl", FewshotPath: "testdata/mmlu_dev.jsonl", Fewshot: 1, Seed: seed, FewshotSampler: SamplerRandom}
}

func TestMMLUFirstNSampler(t *testing.T) {
	for seed := uint64(0); seed < 8; seed++ {
		lm := &fakeLM{ll: func(string, string) float64 { return -1 }}
		spec := mmluSpec(seed)
		spec.FewshotSampler = "" // the MMLU default: first_n
		one(t, lm, spec)
		c := contexts(lm)
		for _, i := range []int{0, 2} {
			if !strings.Contains(c[i], "about math.\n\nWhat is 1 + 1?\nA. 2\nB. 3\nC. 4\nD. 5\nAnswer: A\n\nWhat is") {
				t.Fatalf("seed %d: first_n should take the subject's first dev example:\n%s", seed, c[i])
			}
		}
	}
	spec := mmluSpec(0)
	spec.FewshotSampler = "best"
	if _, err := Evaluate(context.Background(), &fakeLM{}, Suite{Tasks: []TaskSpec{spec}}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "field fewshot_sampler") {
		t.Fatalf("err = %v", err)
	}
}

func contexts(lm *fakeLM) []string {
	var out []string
	for _, q := range lm.requests() {
		if len(out) == 0 || out[len(out)-1] != q.Context {
			out = append(out, q.Context)
		}
	}
	return out
}

func TestFewshotPromptAndDeterminism(t *testing.T) {
	flat := func(string, string) float64 { return -1 }
	a := &fakeLM{ll: flat}
	one(t, a, mmluSpec(1))
	got := contexts(a)
	if len(got) != 3 {
		t.Fatalf("%d distinct contexts, want 3 (one per item, choices adjacent)", len(got))
	}
	desc := "The following are multiple choice questions (with answers) about lit.\n\n"
	want := desc + "Who wrote Emma?\nA. Shakespeare\nB. Dickens\nC. Austen\nD. Tolstoy\nAnswer: C\n\n" +
		"Who wrote Hamlet?\nA. Shakespeare\nB. Dickens\nC. Austen\nD. Tolstoy\nAnswer:"
	if got[1] != want {
		t.Fatalf("lit prompt\n%q\nwant\n%q", got[1], want)
	}
	for _, i := range []int{0, 2} {
		if !strings.Contains(got[i], "about math") || strings.Contains(got[i], "Emma") {
			t.Fatalf("math item got a non-math example:\n%s", got[i])
		}
	}
	b := &fakeLM{ll: flat}
	one(t, b, mmluSpec(1))
	if !reflect.DeepEqual(got, contexts(b)) {
		t.Fatal("same seed, different few-shot prompts")
	}
	differs := false
	for seed := uint64(2); seed < 12 && !differs; seed++ {
		c := &fakeLM{ll: flat}
		one(t, c, mmluSpec(seed))
		differs = !reflect.DeepEqual(got, contexts(c))
	}
	if !differs {
		t.Fatal("few-shot draws ignore the seed")
	}
}

func TestFewshotFromSameFileExcludesItem(t *testing.T) {
	lm := &fakeLM{ll: func(string, string) float64 { return -1 }}
	spec := TaskSpec{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl", Fewshot: 1}
	one(t, lm, spec)
	c := contexts(lm)
	if !strings.HasPrefix(c[0], "Question: Pick the accented one\nAnswer: xxx\n\nQuestion: Pick the long one") ||
		!strings.HasPrefix(c[1], "Question: Pick the long one\nAnswer: bbbb\n\nQuestion: Pick the accented one") {
		t.Fatalf("contexts %q", c)
	}
	spec.Fewshot = 2 // only one other item exists
	_, err := Evaluate(context.Background(), lm, Suite{Tasks: []TaskSpec{spec}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "2 few-shot examples wanted, only 1 available") {
		t.Fatalf("err = %v", err)
	}
}

func TestSubsampleDeterminism(t *testing.T) {
	pick := func(seed uint64) []string {
		lm := &fakeLM{ll: func(string, string) float64 { return -1 }}
		one(t, lm, TaskSpec{Name: "m", Source: "mmlu", Path: "testdata/mmlu_test.jsonl", N: 2, Seed: seed})
		return contexts(lm)
	}
	a := pick(5)
	if len(a) != 2 || !reflect.DeepEqual(a, pick(5)) {
		t.Fatalf("subsample of 2 not reproducible: %q", a)
	}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		for _, c := range pick(seed) {
			seen[c] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("20 seeds reached %d of 3 items", len(seen))
	}
}

func TestFitnessIsWeightedMean(t *testing.T) {
	lm := &fakeLM{ll: table(map[string]float64{
		"Question: Pick the long one\nAnswer:| a": -2, "Question: Pick the long one\nAnswer:| bbbb": -4,
		" éé": -4, " xxx": -4.5,
		"The trophy doesn't fit into the suitcase because the trophy| is too large.":   -3,
		"The trophy doesn't fit into the suitcase because the suitcase| is too large.": -5,
		"Sarah gave Maria a gift because Sarah| was kind to her.":                      -1,
		"Sarah gave Maria a gift because Maria| was kind to her.":                      -2,
	})}
	suite := Suite{Tasks: []TaskSpec{
		{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl", Metric: MetricAcc},      // 0.5
		{Name: "wg", Source: "winogrande", Path: "testdata/winogrande.jsonl", Weight: 3}, // 0.5
		{Name: "arc_norm", Source: "arc", Path: "testdata/arc.jsonl"},                    // 1
	}}
	rep, err := Evaluate(context.Background(), lm, suite, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (0 + 3*0.5 + 1) / 5; !near(rep.Fitness, want) {
		t.Fatalf("fitness %v, want %v", rep.Fitness, want)
	}
	if rep.Tasks[1].Weight != 3 || rep.Tasks[0].Weight != 1 || len(rep.Tasks) != 3 {
		t.Fatalf("tasks %+v", rep.Tasks)
	}
	a, _ := json.Marshal(rep)
	rep2, _ := Evaluate(context.Background(), lm, suite, Options{})
	b, _ := json.Marshal(rep2)
	if string(a) != string(b) {
		t.Fatal("same inputs, different report bytes")
	}
}

func TestMaxBatchKeepsContextsTogether(t *testing.T) {
	lm := &fakeLM{ll: func(string, string) float64 { return -1 }}
	_, err := Evaluate(context.Background(), lm, Suite{Tasks: []TaskSpec{{Name: "m", Source: "mmlu", Path: "testdata/mmlu_test.jsonl"}}}, Options{MaxBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(lm.calls) != 3 {
		t.Fatalf("%d calls, want 3 (one per item: a 4-choice run is never split)", len(lm.calls))
	}
	for _, c := range lm.calls {
		for _, q := range c {
			if q.Context != c[0].Context {
				t.Fatal("a call mixes contexts")
			}
		}
	}
}

// brokenLM returns scores that must never turn into a fitness.
type brokenLM struct {
	fakeLM
	mode string
}

func (b *brokenLM) Score(ctx context.Context, reqs []Request) ([]Result, error) {
	res, _ := b.fakeLM.Score(ctx, reqs)
	switch b.mode {
	case "nan":
		res[1].LogProb = math.NaN()
	case "short":
		res = res[1:]
	case "positive":
		res[0].LogProb = 0.5
	}
	return res, nil
}

func TestBadInputs(t *testing.T) {
	arc := Suite{Tasks: []TaskSpec{{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl"}}}
	for mode, want := range map[string]string{
		"nan":      "task arc: item testdata/arc.jsonl:1: model returned log-probability NaN",
		"short":    "model returned 3 scores for 4 requests",
		"positive": "log-probability 0.5",
	} {
		lm := &brokenLM{fakeLM: fakeLM{ll: func(string, string) float64 { return -1 }}, mode: mode}
		_, err := Evaluate(context.Background(), lm, arc, Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", mode, err, want)
		}
	}
	lm := &fakeLM{ll: func(string, string) float64 { return -1 }}
	for _, c := range []struct {
		spec TaskSpec
		want string
	}{
		{TaskSpec{Name: "g", Source: "gsm8k", Path: "testdata/gsm8k.jsonl", AnswerRegex: "#### ([0-9]+"}, "task g: field answer_regex: error parsing regexp"},
		{TaskSpec{Name: "x", Source: "squad", Path: "p"}, `task x: field source: unknown benchmark format "squad"`},
		{TaskSpec{Name: "s", Source: SourceSynthetic, Family: "addition"}, "task s: field n: a synthetic task needs n > 0"},
		{TaskSpec{Name: "s", Source: SourceSynthetic, Family: "poetry", N: 3}, `unknown synthetic family "poetry"`},
		{TaskSpec{Name: "j", Source: SourceJSONL, Kind: task.MultipleChoice, Path: "testdata/malformed_generic.jsonl"}, "testdata/malformed_generic.jsonl:2:41: malformed JSON"},
		{TaskSpec{Name: "j", Source: SourceJSONL, Path: "testdata/texts.jsonl"}, "task j: field kind"},
		{TaskSpec{Name: "w", Source: "winogrande", Path: "testdata/winogrande.jsonl", Metric: MetricAccNorm}, `field metric: "acc_norm" is not a metric of a partial task`},
		{TaskSpec{Name: "a", Source: "arc", Path: "testdata/arc.jsonl", Weight: -1}, "field weight"},
		{TaskSpec{Name: "bad name!", Source: "arc", Path: "testdata/arc.jsonl"}, "field name"},
		{TaskSpec{Name: "a", Source: "arc", Path: "testdata/missing.jsonl"}, "missing.jsonl: no such file"},
	} {
		_, err := Evaluate(context.Background(), lm, Suite{Tasks: []TaskSpec{c.spec}}, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.spec, err, c.want)
		}
	}
	dup := Suite{Tasks: []TaskSpec{arc.Tasks[0], arc.Tasks[0]}}
	if err := dup.Validate(); err == nil || !strings.Contains(err.Error(), "duplicate task name") {
		t.Errorf("duplicate names: %v", err)
	}
}

func TestDemoSuiteRoundTripsAndScores(t *testing.T) {
	s := DemoFitnessSuite(9)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Suite
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(s, back) {
		t.Fatalf("round trip: %v\n%s", err, b)
	}
	if len(s.Tasks) != len(synth.Families()) {
		t.Fatalf("%d tasks", len(s.Tasks))
	}
	// An oracle that knows every answer scores 1; a flat model scores
	// what argmax's tie-breaking gives, never an error.
	items := map[string]task.Item{}
	for _, ts := range s.Tasks {
		its, _ := synth.Generate(ts.Family, synth.Split(ts.Split), ts.N, ts.Seed)
		for _, it := range its {
			items[it.Query] = it
		}
	}
	oracle := &fakeLM{
		ll: func(ctx, cont string) float64 {
			it := items[ctx]
			if len(it.Choices) > 0 && cont == " "+it.Choices[it.Gold] {
				return -0.1
			}
			return -5
		},
		gen: func(p string) string { return " " + items[p].Answer + "\nQ: 1+1" },
	}
	rep, err := Evaluate(context.Background(), oracle, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Fitness != 1 {
		t.Fatalf("oracle fitness %v: %+v", rep.Fitness, rep.Tasks)
	}
	if len(oracle.gens) != 32 {
		t.Fatalf("addition task generated %d times, want 32", len(oracle.gens))
	}
}

func TestSyntheticPerplexityAndFewshot(t *testing.T) {
	lm := &fakeLM{ll: func(ctx, c string) float64 { return -float64(len(c)) }}
	r := one(t, lm, TaskSpec{Name: "rev_loss", Source: SourceSynthetic, Family: "reversal", Kind: task.Perplexity, N: 5, Seed: 1})
	if !near(r.Metrics[MetricLoss], 1) {
		t.Fatalf("loss %v", r.Metrics[MetricLoss])
	}
	for _, q := range lm.requests() {
		if !strings.HasPrefix(q.Continuation, "Reverse: ") || !strings.HasSuffix(q.Continuation, "\n") {
			t.Fatalf("text %q", q.Continuation)
		}
	}
	lm = &fakeLM{ll: func(string, string) float64 { return -1 }}
	one(t, lm, TaskSpec{Name: "cmp", Source: SourceSynthetic, Family: "comparison", N: 4, Fewshot: 2, Seed: 1})
	for _, c := range contexts(lm) {
		if strings.Count(c, "Largest:") != 3 || strings.Count(c, "\n\n") != 2 {
			t.Fatalf("few-shot context %q", c)
		}
		for _, ex := range strings.Split(c, "\n\n")[:2] {
			q := ex[:strings.Index(ex, "A:")+2]
			if synth.SplitOf("comparison", q) != synth.Train {
				t.Fatalf("few-shot example %q not from the train split", q)
			}
		}
	}
}

func TestGenericGenerationAndWithSeed(t *testing.T) {
	lm := &fakeLM{gen: func(p string) string {
		if strings.Contains(p, "France") {
			return " Paris \n\nCapital of Spain? Madrid"
		}
		return " rome"
	}}
	suite := Suite{Tasks: []TaskSpec{{Name: "capitals", Source: SourceJSONL, Kind: task.Generate, Path: "testdata/generic_gen.jsonl"}}}
	rep, err := Evaluate(context.Background(), lm, suite, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// No regex: the trimmed output up to the stop string, case-sensitive.
	if r := rep.Tasks[0]; r.Score != 0.5 || r.Metric != MetricExactMatch {
		t.Fatalf("%+v", r)
	}
	if _, ok := rep.Tasks[0].Metrics[MetricExactFlexible]; ok {
		t.Fatal("flexible metric without a flexible regex")
	}
	suite.Tasks[0].IgnoreCase = true
	if rep, _ = Evaluate(context.Background(), lm, suite, Options{}); rep.Tasks[0].Score != 1 {
		t.Fatalf("ignore_case: %+v", rep.Tasks[0])
	}
	s := DemoFitnessSuite(1).WithSeed(77)
	for _, ts := range s.Tasks {
		if ts.Seed != 77 {
			t.Fatalf("WithSeed left %+v", ts)
		}
	}
	if DemoFitnessSuite(1).Tasks[0].Seed != 1 {
		t.Fatal("WithSeed changed the original suite")
	}
}
