package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/eval"
	"github.com/evomerge/evomerge/internal/eval/bench"
	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/merge"
	"github.com/evomerge/evomerge/internal/train"
	"github.com/evomerge/evomerge/workflows"
)

// fieldNames are the exported field names of a struct type.
func fieldNames(v any) []string {
	t := reflect.TypeOf(v)
	var names []string
	for i := range t.NumField() {
		names = append(names, t.Field(i).Name)
	}
	slices.Sort(names)
	return names
}

// Mirrored types have the same fields under the same names: a field added on
// one side fails here instead of being dropped on the way to the engine.
func TestMirroredTypesHaveTheSameFields(t *testing.T) {
	require.Equal(t, fieldNames(merge.Spec{}), fieldNames(workflows.Genome{}), "Genome vs merge.Spec")
	require.Equal(t, fieldNames(merge.Param{}), fieldNames(workflows.Param{}), "Param vs merge.Param")
	require.Equal(t, fieldNames(merge.Slice{}), fieldNames(workflows.Slice{}), "Slice vs merge.Slice")
	require.Equal(t, fieldNames(merge.SliceSource{}), fieldNames(workflows.SliceSource{}), "SliceSource vs merge.SliceSource")
	// TinyModel is the part of llm.Config a user chooses, under the same names.
	cfgFields := fieldNames(llm.Config{})
	for _, f := range fieldNames(workflows.TinyModel{}) {
		require.Contains(t, cfgFields, f, "TinyModel.%s has no llm.Config counterpart", f)
	}
}

// The field-by-field conversion gives the spec the JSON round trip gave
// before it (so merge output keys are unchanged), for sampled genomes of every
// method and for slices with sources.
func TestMergeSpecIsTheJSONRoundTrip(t *testing.T) {
	viaJSON := func(g workflows.Genome) merge.Spec {
		b, err := json.Marshal(g)
		require.NoError(t, err)
		var s merge.Spec
		require.NoError(t, json.Unmarshal(b, &s))
		return s
	}
	for name := range workflows.Methods {
		cfg := workflows.DemoConfig()
		cfg.Crossover.Methods = []workflows.CrossoverMethod{{Name: name, Params: map[string]workflows.ParamRange{}}}
		cfg, err := workflows.Prepare(cfg)
		require.NoError(t, err)
		rng := workflows.NewRNG(3)
		for i := range 5 {
			_, g := workflows.SampleGenome(cfg, rng, []string{fmt.Sprintf("sha256:%064x", i), fmt.Sprintf("sha256:%064x", i+9)}, fmt.Sprintf("sha256:%064x", 99))
			require.Equal(t, viaJSON(g), mergeSpec(g), name)
		}
	}
	g := workflows.Genome{Method: "linear", Base: -1, Seed: 7, OutType: "f16",
		Global:   map[string]workflows.Param{"normalize": {Anchors: []float64{1}}},
		PerModel: []map[string]workflows.Param{{"weight": {Anchors: []float64{0.5, 1}, ByClass: map[string][]float64{"mlp": {0.2}}}}, {}},
		Slices: []workflows.Slice{{Model: 1, From: 0, To: 2},
			{Sources: []workflows.SliceSource{{Model: 0, From: 2, To: 4}, {Model: 1, From: 2, To: 4}}}}}
	require.Equal(t, viaJSON(g), mergeSpec(g))
}

func TestTinyModelConfigCopiesEveryField(t *testing.T) {
	m := workflows.TinyModel{Layers: 3, Dim: 48, Heads: 6, KVHeads: 2, FFN: 96, Context: 40}
	c := tinyModelConfig(m)
	require.Equal(t, llm.Config{Vocab: llm.ByteVocabLen, Layers: 3, Dim: 48, Heads: 6, KVHeads: 2, FFN: 96, Context: 40,
		RopeBase: llm.ByteLlamaRopeBase, NormEps: llm.ByteLlamaNormEps}, c)
	require.NoError(t, c.Validate())
}

func TestTrainConfigAndOptionsCopyEveryField(t *testing.T) {
	p := workflows.FineTuneParams{Method: "lora", LR: 0.01, Steps: 7, Rank: 4, Alpha: 8, Dataset: "addition",
		Examples: 9, BatchSize: 3, Seed: 11, CheckpointEvery: 5}
	require.Equal(t, train.Config{Method: "lora", LR: 0.01, Steps: 7, Rank: 4, Alpha: 8, BatchSize: 3, Seed: 11, CheckpointEvery: 5}, trainConfig(p))
	c := Config{Device: "cuda", CUDALibrary: "/x/libggml-cuda.so", Threads: 3}
	require.Equal(t, llm.Options{Device: "cuda", CUDALibrary: "/x/libggml-cuda.so", Threads: 3}, c.llmOptions())
	require.Equal(t, 3, c.mergeOptions(nil).Parallelism)
}

// Mirrored enumerations agree: families, splits, fine-tune methods, merge
// output types.
func TestMirroredEnumerationsAgree(t *testing.T) {
	fams := slices.Clone(workflows.SynthFamilies)
	slices.Sort(fams)
	engine := synth.Families()
	slices.Sort(engine)
	require.Equal(t, engine, fams, "workflows.SynthFamilies vs synth.Families()")

	for split, want := range map[string]synth.Split{workflows.SplitValidation: synth.Validation, workflows.SplitTest: synth.Test, "dev": synth.Validation} {
		got, err := synth.ParseSplit(split)
		require.NoError(t, err, split)
		require.Equal(t, want, got, split)
	}

	// Every fine-tune method the workflow samples trains (one step on a tiny model); another does not.
	base, err := llm.NewTiny(tinyCfg, 1, llm.Options{Threads: 1})
	require.NoError(t, err)
	defer base.Close()
	data := []train.Example{{Prompt: "1+1=", Completion: "2"}}
	for _, m := range workflows.FineTuneMethods {
		p := workflows.FineTuneParams{Method: m, LR: 1e-3, Steps: 1, Rank: 2, Alpha: 4, BatchSize: 1, Seed: 1}.WithDefaults()
		p.CheckpointEvery = 0
		out, _, err := train.Run(context.Background(), train.Job{Base: base, Data: data, Config: trainConfig(p)})
		require.NoError(t, err, m)
		out.Close()
	}
	_, _, err = train.Run(context.Background(), train.Job{Base: base, Data: data, Config: trainConfig(workflows.FineTuneParams{Method: "qlora", LR: 1e-3, Steps: 1})})
	require.Error(t, err)
}

// workflows.TaskSpec mirrors eval.TaskSpec field by field, under the same
// JSON names, and EvalTask copies every field; the task sources agree.
func TestEvalTaskMirrorsTheEngine(t *testing.T) {
	require.Equal(t, fieldNames(eval.TaskSpec{}), fieldNames(workflows.TaskSpec{}), "TaskSpec vs eval.TaskSpec")
	et, wt := reflect.TypeOf(eval.TaskSpec{}), reflect.TypeOf(workflows.TaskSpec{})
	for i := range wt.NumField() {
		f := wt.Field(i)
		ef, _ := et.FieldByName(f.Name)
		require.Equal(t, strings.Split(ef.Tag.Get("json"), ",")[0], strings.Split(f.Tag.Get("json"), ",")[0], f.Name)
	}
	full := workflows.TaskSpec{
		Name: "n", Source: "jsonl", Kind: "generate", Family: "f", Split: "s", Path: "p", FewshotPath: "fp",
		FewshotSplit: "fs", N: 3, Seed: 4, Fewshot: 5, FewshotSampler: "first_n", Weight: 6, Metric: "m",
		MaxTokens: 7, Until: []string{"u"}, AnswerRegex: "a", FlexibleRegex: "b", IgnoreRegexes: []string{"c"}, IgnoreCase: true,
	}
	v := reflect.ValueOf(EvalTask(full, 99))
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsZero(), "EvalTask drops %s", v.Type().Field(i).Name)
	}
	require.Equal(t, uint64(99), EvalTask(workflows.TaskSpec{}, 99).Seed, "a task without a seed takes the run's")

	sources := append(bench.Formats(), eval.SourceJSONL, eval.SourceSynthetic)
	slices.Sort(sources)
	ours := slices.Clone(workflows.TaskSources)
	slices.Sort(ours)
	require.Equal(t, sources, ours)
}
