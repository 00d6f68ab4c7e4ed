package activities

import (
	"slices"

	"github.com/evomerge/evomerge/internal/eval"
	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/eval/task"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/merge"
	"github.com/evomerge/evomerge/internal/train"
	"github.com/evomerge/evomerge/workflows"
)

// The one conversion layer from the workflow's contract types to the engines'
// types, field by field (no JSON round trips). convert_test.go checks, per
// pair, that every field and every mirrored enumeration (methods, splits,
// families, output types) agree, so a field added on one side fails a test
// instead of being dropped on the way.

// mergeSpec is the engine's spec of a genome.
func mergeSpec(g workflows.Genome) merge.Spec {
	s := merge.Spec{Method: g.Method, Base: g.Base, Seed: g.Seed, OutType: g.OutType}
	if len(g.Global) > 0 { // an empty map is no map, as the genome's JSON omits it
		s.Global = mergeParams(g.Global)
	}
	for _, pm := range g.PerModel {
		s.PerModel = append(s.PerModel, mergeParams(pm))
	}
	for _, sl := range g.Slices {
		ms := merge.Slice{Model: sl.Model, From: sl.From, To: sl.To}
		for _, src := range sl.Sources {
			ms.Sources = append(ms.Sources, merge.SliceSource{Model: src.Model, From: src.From, To: src.To})
		}
		s.Slices = append(s.Slices, ms)
	}
	return s
}

// mergeParams converts one parameter map (nil stays nil). The spec, and so
// the merge's output key, is the one the genome's JSON gave before this
// conversion existed (tested).
func mergeParams(ps map[string]workflows.Param) map[string]merge.Param {
	if ps == nil {
		return nil
	}
	out := make(map[string]merge.Param, len(ps))
	for k, p := range ps {
		mp := merge.Param{}
		if len(p.Anchors) > 0 {
			mp.Anchors = slices.Clone(p.Anchors)
		}
		if len(p.ByClass) > 0 {
			mp.ByClass = make(map[string][]float64, len(p.ByClass))
			for c, v := range p.ByClass {
				mp.ByClass[c] = slices.Clone(v)
			}
		}
		out[k] = mp
	}
	return out
}

// tinyModelConfig is the engine's config of the demo's tiny byte-level llama.
func tinyModelConfig(m workflows.TinyModel) llm.Config {
	return llm.ByteLlamaConfig(m.Layers, m.Dim, m.Heads, m.KVHeads, m.FFN, m.Context)
}

// trainExamples are the trainer's examples of synthetic pairs.
func trainExamples(pairs []synth.Pair) []train.Example {
	out := make([]train.Example, len(pairs))
	for i, p := range pairs {
		out[i] = train.Example{Prompt: p.Prompt, Completion: p.Completion}
	}
	return out
}

// trainConfig is the trainer's config of a fine-tune (after WithDefaults).
func trainConfig(p workflows.FineTuneParams) train.Config {
	return train.Config{
		Method: p.Method, Steps: p.Steps, LR: p.LR, BatchSize: p.BatchSize,
		Rank: p.Rank, Alpha: p.Alpha, Seed: p.Seed, CheckpointEvery: p.CheckpointEvery,
	}
}

// llmOptions are where this worker's models run: its device, CUDA library
// and threads (the trainer follows the model's backend).
func (c Config) llmOptions() llm.Options {
	return llm.Options{Device: c.Device, CUDALibrary: c.CUDALibrary, Threads: c.Threads}
}

// mergeOptions are this worker's merge engine options.
func (c Config) mergeOptions(progress func(done, total int)) merge.Options {
	return merge.Options{Parallelism: c.Threads, Progress: progress}
}

// EvalTask is the engine's task of a run config's (fitness.dev/test, or a
// `starter eval` suite file), field by field; a task without its own seed
// takes seed (the run's).
func EvalTask(t workflows.TaskSpec, seed uint64) eval.TaskSpec {
	if t.Seed != 0 {
		seed = t.Seed
	}
	return eval.TaskSpec{
		Name: t.Name, Source: t.Source, Kind: task.Kind(t.Kind), Family: t.Family, Split: t.Split,
		Path: t.Path, FewshotPath: t.FewshotPath, FewshotSplit: t.FewshotSplit,
		N: t.N, Seed: seed, Fewshot: t.Fewshot, FewshotSampler: t.FewshotSampler,
		Weight: t.Weight, Metric: t.Metric, MaxTokens: t.MaxTokens, Until: slices.Clone(t.Until),
		AnswerRegex: t.AnswerRegex, FlexibleRegex: t.FlexibleRegex,
		IgnoreRegexes: slices.Clone(t.IgnoreRegexes), IgnoreCase: t.IgnoreCase,
	}
}

// evalSuite is the engine's suite of the workflow's. A task naming no
// source is a synthetic family of the suite's split, as histories recorded
// before fitness.dev/test give them (their "dev" still means validation):
// the same task names, sizes and seeds, so their cached scores still count.
func evalSuite(s workflows.SuiteSpec) (eval.Suite, error) {
	if len(s.Tasks) == 0 {
		return eval.Suite{}, badInput("suite.tasks: empty")
	}
	suite := eval.Suite{Name: s.Name}
	for i, t := range s.Tasks {
		if t.Source == "" {
			split, err := synth.ParseSplit(s.Split)
			if err != nil {
				return eval.Suite{}, badInput("suite.split: %v", err)
			}
			if t.N < 1 {
				return eval.Suite{}, badInput("suite.tasks[%d].n: %d, want at least 1", i, t.N)
			}
			t.Source, t.Split = workflows.SourceSynthetic, string(split)
			if t.Name == "" {
				t.Name = t.Family
			}
		}
		suite.Tasks = append(suite.Tasks, EvalTask(t, s.Seed))
	}
	if err := suite.Validate(); err != nil {
		return eval.Suite{}, badInput("suite: %v", err)
	}
	return suite, nil
}

// taskScores are the contract's scores of an engine report, in the suite's
// task order. items counts only what was computed now; tokens counts every
// task's cost, cached or not, so the compute budget is charged the same
// whichever run scored a model first.
func taskScores(s workflows.SuiteSpec, rep eval.Report) (scores []workflows.TaskScore, items int, tokens int64, cached bool) {
	cached = len(rep.Tasks) > 0
	for _, t := range rep.Tasks {
		tokens += t.Tokens
		scores = append(scores, workflows.TaskScore{Family: t.Name, Score: t.Score, N: t.N, Metric: t.Metric, StdErr: t.StdErr})
		if !t.Cached {
			cached = false
			items += t.N
		}
	}
	return scores, items, tokens, cached
}
