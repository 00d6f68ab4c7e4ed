package activities

import (
	"context"
	"fmt"
	"path/filepath"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/internal/train"
	"github.com/evomerge/evomerge/workflows"
)

// registerEngineActivities registers the activities that need the model
// engines (llm, train, eval).
func (a *Activities) registerEngineActivities(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(a.InitPopulation, activity.RegisterOptions{Name: workflows.ActivityInitPopulation})
	r.RegisterActivityWithOptions(a.Evaluate, activity.RegisterOptions{Name: workflows.ActivityEvaluate})
	r.RegisterActivityWithOptions(a.FineTune, activity.RegisterOptions{Name: workflows.ActivityFineTune})
}

// demoEngineVersion is part of the demo population's key.
const demoEngineVersion = "demo-1"

// InitProgress is InitPopulation's heartbeat detail for the demo.
type InitProgress struct {
	Phase  string  `json:"phase"` // "pretrain" or "specialist"
	Member int     `json:"member"`
	Step   int     `json:"step"`
	Steps  int     `json:"steps"`
	Loss   float64 `json:"loss"`
}

// demoPopulation pretrains a tiny byte-level llama from nothing on the
// synthetic pack and fine-tunes one specialist per member from it. Every
// piece is memoised by content-derived keys: the base, each specialist (its
// checkpoints too) and the whole population, so a second run, or a retry
// after a crash, redoes only what is missing.
func (a *Activities) demoPopulation(ctx context.Context, in workflows.InitPopulationInput) (workflows.InitPopulationOutput, error) {
	var out workflows.InitPopulationOutput
	d := *in.Demo
	if len(d.Families) == 0 {
		return out, badInput("demo.families: empty")
	}
	cfg := tinyModelConfig(d.Model)
	if err := cfg.Validate(); err != nil {
		return out, badInput("demo.model: %v", err)
	}
	if d.PretrainSteps < 1 || !(d.PretrainLR > 0) {
		return out, badInput("demo.pretrain_steps/pretrain_lr: %d/%g, want positive", d.PretrainSteps, d.PretrainLR)
	}
	key, err := memoKey(demoEngineVersion, struct {
		Demo workflows.DemoSpec `json:"demo"`
		Seed uint64             `json:"seed"`
		Size int                `json:"size"`
	}{d, in.Seed, in.Size})
	if err != nil {
		return out, err
	}
	memo := store.MemoName("init", key)
	if ok, err := a.loadMemo(ctx, memo, &out, func(v any) string { return v.(*workflows.InitPopulationOutput).Base }); err != nil {
		return out, err
	} else if ok {
		out.Cached = true
		return out, nil
	}

	baseRef, err := a.demoBase(ctx, key, cfg, d, in.Seed)
	if err != nil {
		return out, err
	}
	out.Base = baseRef
	for i := range in.Size {
		p := d.FineTune
		p.Dataset = d.Families[i%len(d.Families)]
		p.Seed = in.Seed + uint64(i) + 1
		res, err := a.fineTune(ctx, workflows.FineTuneInput{Run: in.Run, Base: baseRef, Params: p}, fineTuneBeat{},
			func(b fineTuneBeat) {
				heartbeat(ctx, InitProgress{Phase: "specialist", Member: i, Step: b.Step, Steps: p.Steps, Loss: b.Loss})
			})
		if err != nil {
			return out, fmt.Errorf("demo specialist %d (%s): %w", i, p.Dataset, err)
		}
		out.Members = append(out.Members, workflows.InitMember{
			Ref:    res.Ref,
			Origin: "fine-tune " + workflows.FineTuneLabel(p),
		})
	}
	if err := a.saveMemo(ctx, memo, out); err != nil {
		return out, err
	}
	return out, nil
}

// demoBase pretrains (or finds) the demo's base model.
func (a *Activities) demoBase(ctx context.Context, key string, cfg llm.Config, d workflows.DemoSpec, seed uint64) (string, error) {
	memo := store.MemoName("init-base", key)
	var rec struct {
		Ref string `json:"ref"`
	}
	if ok, err := a.loadMemo(ctx, memo, &rec, func(v any) string { return rec.Ref }); err != nil {
		return "", err
	} else if ok {
		return rec.Ref, nil
	}
	texts, err := synth.PretrainCorpus(d.Families, seed)
	if err != nil {
		return "", badInput("demo.families: %v", err)
	}
	a.info(ctx, "pretraining the demo base", "steps", d.PretrainSteps, "texts", len(texts))
	m, _, err := train.Pretrain(ctx, cfg, texts,
		train.Config{Steps: d.PretrainSteps, LR: d.PretrainLR, Seed: seed},
		a.cfg.llmOptions(), func(p train.Progress) {
			heartbeat(ctx, InitProgress{Phase: "pretrain", Step: p.Step, Steps: p.Steps, Loss: p.Loss})
		})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("demo pretraining: %w", err)
	}
	defer m.Close()
	dir, cleanup, err := a.scratch("demo-base")
	if err != nil {
		return "", err
	}
	defer cleanup()
	p := filepath.Join(dir, "base.gguf")
	if _, err := m.Save(p); err != nil {
		return "", fmt.Errorf("save demo base: %w", err)
	}
	ref, err := a.cfg.Store.PutFile(ctx, store.Models, p)
	if err != nil {
		return "", err
	}
	rec.Ref = ref.String()
	if err := a.saveMemo(ctx, memo, rec); err != nil {
		return "", err
	}
	return rec.Ref, nil
}
