package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// fakeWorld is a test double for the activities: a "model" is a vector of
// skills (one per synthetic family) and its ref is the hash of that vector, so
// merges and fine-tunes change fitness in a plausible, deterministic way
// without any engine.
type fakeWorld struct {
	mu       sync.Mutex
	models   map[ModelRef][]float64
	calls    map[string]int
	families []string

	// Optional behaviours for tests.
	diverge        func(FineTuneParams) bool // fine-tune returns Diverged
	failEvalOnce   map[ModelRef]bool         // first attempt of these evaluations fails (retryable)
	onMerge        func(n int)               // called with the merge count
	trainCost      func(FineTuneInput) int64 // tokens a fine-tune reports (default 100 a step)
	evalCost       func(EvaluateInput) int64 // tokens an evaluation reports (default 2 an item)
	tokenLog       []activityCost            // every fine-tune and evaluation, in completion order
	realReports    bool                      // the test registers the real WriteReport
	publishedInput *PublishInput
	initInputs     []InitPopulationInput
	evalInputs     []EvaluateInput
}

// activityCost is one activity's reported token cost.
type activityCost struct {
	Activity string
	Split    string // evaluations
	Tokens   int64
}

func newFakeWorld() *fakeWorld {
	return &fakeWorld{models: map[ModelRef][]float64{}, calls: map[string]int{}, families: SynthFamilies, failEvalOnce: map[ModelRef]bool{}}
}

func (w *fakeWorld) put(v []float64) ModelRef {
	for i := range v {
		v[i] = math.Round(math.Max(0, math.Min(1, v[i]))*1e6) / 1e6
	}
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	ref := "sha256:" + hex.EncodeToString(sum[:])
	w.models[ref] = v
	return ref
}

func (w *fakeWorld) get(ref ModelRef) ([]float64, error) {
	v, ok := w.models[ref]
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError("unknown model "+ref, ErrTypeBadInput, nil)
	}
	return append([]float64(nil), v...), nil
}

func (w *fakeWorld) count(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[name]
}

func (w *fakeWorld) family(name string) int {
	for i, f := range w.families {
		if f == name {
			return i
		}
	}
	return -1
}

func (w *fakeWorld) InitPopulation(ctx context.Context, in InitPopulationInput) (InitPopulationOutput, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[ActivityInitPopulation]++
	w.initInputs = append(w.initInputs, in)
	base := make([]float64, len(w.families))
	for i := range base {
		base[i] = 0.1
	}
	out := InitPopulationOutput{Base: w.put(append([]float64(nil), base...))}
	rng := NewRNG(in.Seed)
	for i := 0; i < in.Size; i++ {
		v := append([]float64(nil), base...)
		f := i % len(v)
		v[f] = 0.3 + 0.3*rng.Float64()
		for j := range v {
			v[j] += 0.05 * rng.Float64()
		}
		out.Members = append(out.Members, InitMember{Ref: w.put(v), Origin: "fine-tune on " + w.families[f]})
	}
	return out, nil
}

func (w *fakeWorld) Merge(ctx context.Context, in MergeInput) (MergeOutput, error) {
	w.mu.Lock()
	w.calls[ActivityMerge]++
	n := w.calls[ActivityMerge]
	hook := w.onMerge
	w.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	g := in.Genome
	if _, ok := Methods[g.Method]; !ok {
		return MergeOutput{}, temporal.NewNonRetryableApplicationError("unknown method "+g.Method, ErrTypeBadInput, nil)
	}
	vecs := make([][]float64, len(in.Inputs))
	for i, ref := range in.Inputs {
		v, err := w.get(ref)
		if err != nil {
			return MergeOutput{}, err
		}
		vecs[i] = v
	}
	weight := func(i int) float64 {
		if i < len(g.PerModel) {
			if p, ok := g.PerModel[i]["weight"]; ok && len(p.Anchors) > 0 {
				return mean(p.Anchors)
			}
		}
		return 1
	}
	out := make([]float64, len(w.families))
	switch {
	case g.Method == "slerp":
		t := mean(g.Global["t"].Anchors)
		for k := range out {
			out[k] = (1-t)*vecs[0][k] + t*vecs[1][k]
		}
	case g.Base >= 0:
		// Task arithmetic on skills: base + sum of weighted deltas, the
		// larger delta kept where they disagree.
		base := vecs[g.Base]
		for k := range out {
			best := 0.0
			for i, v := range vecs {
				if i == g.Base {
					continue
				}
				if d := weight(i) * (v[k] - base[k]); d > best {
					best = d
				}
			}
			out[k] = base[k] + best
		}
	default:
		total := 0.0
		for i := range vecs {
			total += weight(i)
		}
		for k := range out {
			for i, v := range vecs {
				out[k] += weight(i) / total * v[k]
			}
		}
	}
	return MergeOutput{Ref: w.put(out), Bytes: 1234}, nil
}

func (w *fakeWorld) FineTune(ctx context.Context, in FineTuneInput) (FineTuneOutput, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[ActivityFineTune]++
	if w.diverge != nil && w.diverge(in.Params) {
		return FineTuneOutput{}, temporal.NewNonRetryableApplicationError("loss became NaN at step 3", ErrTypeDiverged, nil)
	}
	v, err := w.get(in.Base)
	if err != nil {
		return FineTuneOutput{}, err
	}
	f := w.family(in.Params.Dataset)
	if f < 0 {
		return FineTuneOutput{}, temporal.NewNonRetryableApplicationError("unknown dataset "+in.Params.Dataset, ErrTypeBadInput, nil)
	}
	v[f] += in.Params.LR * float64(in.Params.Steps) * 5
	tokens := int64(in.Params.Steps) * 100
	if w.trainCost != nil {
		tokens = w.trainCost(in)
	}
	w.tokenLog = append(w.tokenLog, activityCost{Activity: ActivityFineTune, Tokens: tokens})
	return FineTuneOutput{Ref: w.put(v), Steps: in.Params.Steps, Tokens: tokens, FirstLoss: 2, FinalLoss: 1}, nil
}

func (w *fakeWorld) Evaluate(ctx context.Context, in EvaluateInput) (EvaluateOutput, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[ActivityEvaluate]++
	w.evalInputs = append(w.evalInputs, in)
	if w.failEvalOnce[in.Model] && activity.GetInfo(ctx).Attempt == 1 {
		return EvaluateOutput{}, fmt.Errorf("worker lost its GPU (test)")
	}
	v, err := w.get(in.Model)
	if err != nil {
		return EvaluateOutput{}, err
	}
	out := EvaluateOutput{Model: in.Model}
	total := 0.0
	for _, t := range in.Suite.Tasks {
		f := w.family(t.Family)
		if f < 0 {
			return EvaluateOutput{}, temporal.NewNonRetryableApplicationError("unknown task "+t.Family, ErrTypeBadInput, nil)
		}
		score := v[f]
		if in.Suite.Split == SplitTest {
			score *= 0.95
		}
		out.Tasks = append(out.Tasks, TaskScore{Family: t.Family, Score: score, N: t.N})
		out.Fitness += t.Weight * score
		total += t.Weight
		out.Items += t.N
		out.Tokens += int64(t.N) * 2 // two tokens an item, like a short continuation
	}
	out.Fitness /= total
	if w.evalCost != nil {
		out.Tokens = w.evalCost(in)
	}
	w.tokenLog = append(w.tokenLog, activityCost{Activity: ActivityEvaluate, Split: in.Suite.Split, Tokens: out.Tokens})
	return out, nil
}

func (w *fakeWorld) Publish(ctx context.Context, in PublishInput) (PublishOutput, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[ActivityPublish]++
	if _, err := w.get(in.Model); err != nil {
		return PublishOutput{}, err
	}
	cp := in
	w.publishedInput = &cp
	return PublishOutput{Location: "store:runs/" + in.Target.Name + "/winner.gguf"}, nil
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// register puts the fakes on any registry under the contract's names.
type activityRegistry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

func (w *fakeWorld) register(r activityRegistry) {
	r.RegisterActivityWithOptions(w.InitPopulation, activity.RegisterOptions{Name: ActivityInitPopulation})
	r.RegisterActivityWithOptions(w.Merge, activity.RegisterOptions{Name: ActivityMerge})
	r.RegisterActivityWithOptions(w.FineTune, activity.RegisterOptions{Name: ActivityFineTune})
	r.RegisterActivityWithOptions(w.Evaluate, activity.RegisterOptions{Name: ActivityEvaluate})
	r.RegisterActivityWithOptions(w.Publish, activity.RegisterOptions{Name: ActivityPublish})
	r.RegisterActivityWithOptions(w.Diversity, activity.RegisterOptions{Name: ActivityDiversity})
	if !w.realReports {
		r.RegisterActivityWithOptions(w.WriteReport, activity.RegisterOptions{Name: ActivityWriteReport})
	}
}

// WriteReport stands in for the store: the report of a run or experiment
// "lives" at a path named after it.
func (w *fakeWorld) WriteReport(ctx context.Context, in WriteReportInput) (WriteReportOutput, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[ActivityWriteReport]++
	name := ""
	switch {
	case in.Run != nil:
		name = in.Run.Run
	case in.Experiment != nil:
		name = in.Experiment.Name
	}
	return WriteReportOutput{Ref: "sha256:" + strings.Repeat("0", 64), Location: "/store/reports/" + name + ".html"}, nil
}

// Diversity measures the skill vectors' task vectors from the ancestor the
// way internal/diversity does with weights.
func (w *fakeWorld) Diversity(ctx context.Context, in DiversityInput) (DiversityOutput, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[ActivityDiversity]++
	base, err := w.get(in.Ancestor)
	if err != nil {
		return DiversityOutput{}, err
	}
	vecs := make([][]float64, len(in.Models))
	for i, ref := range in.Models {
		v, err := w.get(ref)
		if err != nil {
			return DiversityOutput{}, err
		}
		for k := range v {
			v[k] -= base[k]
		}
		vecs[i] = v
	}
	dot := func(a, b []float64) float64 {
		s := 0.0
		for k := range a {
			s += a[k] * b[k]
		}
		return s
	}
	out := DiversityOutput{GenDiversity: GenDiversity{Ancestor: in.Ancestor, MinDistance: math.Inf(1), MaxDistance: math.Inf(-1), FitnessMin: math.Inf(1), FitnessMax: math.Inf(-1)}}
	pairs := 0
	for i := range vecs {
		for j := i + 1; j < len(vecs); j++ {
			d := 1 - dot(vecs[i], vecs[j])/math.Sqrt(dot(vecs[i], vecs[i])*dot(vecs[j], vecs[j]))
			out.MeanDistance += d
			out.MinDistance, out.MaxDistance = math.Min(out.MinDistance, d), math.Max(out.MaxDistance, d)
			pairs++
		}
	}
	out.MeanDistance /= float64(pairs)
	out.FitnessMean = mean(in.Scores)
	for _, s := range in.Scores {
		out.FitnessStd += (s - out.FitnessMean) * (s - out.FitnessMean)
		out.FitnessMin, out.FitnessMax = math.Min(out.FitnessMin, s), math.Max(out.FitnessMax, s)
	}
	out.FitnessStd = math.Sqrt(out.FitnessStd / float64(len(in.Scores)))
	return out, nil
}
