package engine

import (
	"bytes"
	"context"
	"testing"

	"github.com/evomerge/evomerge/internal/eval"
	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/train"
)

// fineTune trains a fresh tiny model on a family's train split.
func fineTune(t *testing.T, family string, steps int, lr float64) *llm.Model {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.TrainJSONL(family, 2000, 1, &buf); err != nil {
		t.Fatal(err)
	}
	data, err := train.ReadJSONL(&buf, family)
	if err != nil {
		t.Fatal(err)
	}
	cfg := llm.Config{Vocab: llm.ByteVocabLen, Dim: 64, Layers: 2, Heads: 4, KVHeads: 4, FFN: 192, Context: 64, RopeBase: 10000, NormEps: 1e-5}
	base, err := llm.NewTiny(cfg, 1, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	m, _, err := train.Run(context.Background(), train.Job{Base: base, Data: data,
		Config: train.Config{Steps: steps, LR: lr, Warmup: 10, BatchSize: 16, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// Tiny models fine-tuned by the engine on one family score well above
// chance on that family's held-out test split, and better there than a
// model fine-tuned on another family: the families teach different skills.
// About 25 s on one thread.
func TestFineTunedModelsSpecialise(t *testing.T) {
	models := map[string]*llm.Model{
		"comparison": fineTune(t, "comparison", 150, 3e-3), // chance 1/3
		"sequence":   fineTune(t, "sequence", 150, 5e-3),   // chance 1/4
	}
	acc := map[[2]string]float64{} // (trained on, scored on)
	for trained, m := range models {
		for family := range models {
			suite := eval.Suite{Tasks: []eval.TaskSpec{{Name: family, Source: eval.SourceSynthetic, Family: family, Split: "test", N: 100, Seed: 2}}}
			rep, err := eval.Evaluate(context.Background(), FromModel(m), suite, eval.Options{})
			if err != nil {
				t.Fatal(err)
			}
			acc[[2]string{trained, family}] = rep.Fitness
		}
	}
	t.Logf("test acc (trained on -> scored on): %v", acc)
	// On 100 items, 0.5 is 3.5 standard deviations above 1/3 and 0.38 is
	// 3 above 1/4.
	if a := acc[[2]string{"comparison", "comparison"}]; a < 0.5 || a < acc[[2]string{"sequence", "comparison"}]+0.15 {
		t.Errorf("comparison: specialist %.2f, other model %.2f", a, acc[[2]string{"sequence", "comparison"}])
	}
	if a := acc[[2]string{"sequence", "sequence"}]; a < 0.38 || a < acc[[2]string{"comparison", "sequence"}]+0.1 {
		t.Errorf("sequence: specialist %.2f, other model %.2f", a, acc[[2]string{"comparison", "sequence"}])
	}
}
