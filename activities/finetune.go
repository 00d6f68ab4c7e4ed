package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/evomerge/evomerge/internal/dataset"
	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/internal/train"
	"github.com/evomerge/evomerge/workflows"
)

// fineTuneEngineVersion is part of every fine-tune's output key: bump it when
// the trainer's output bytes change for the same job.
const fineTuneEngineVersion = "finetune-1"

// fineTuneBeat is the heartbeat detail and the store's checkpoint pointer: the
// contract's FineTuneHeartbeat plus the first loss, so a resumed run reports
// the same result as one never interrupted.
type fineTuneBeat struct {
	workflows.FineTuneHeartbeat
	FirstLoss float64 `json:"first_loss,omitempty"`
}

// FineTune mutates a model by training it briefly on its drawn data (a
// synthetic family, or a mixture of the run's datasets). It
// heartbeats every step; every CheckpointEvery steps the trainer state goes to
// the store and its reference into the heartbeat (and a pointer in the store),
// so a retried attempt resumes from there instead of from step 0 and ends with
// the same bytes. A diverged loss is a non-retryable Diverged error.
func (a *Activities) FineTune(ctx context.Context, in workflows.FineTuneInput) (workflows.FineTuneOutput, error) {
	var resume fineTuneBeat
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		// Undecodable details only cost a restart from the store pointer.
		_ = activity.GetHeartbeatDetails(ctx, &resume)
	}
	// Between steps (fetching the base, a store write retrying through an outage) the last beat is
	// repeated, so a slow store does not look like a dead worker; it starts as the resume point, so a
	// repeated beat never loses the checkpoint a previous attempt recorded.
	var mu sync.Mutex
	last := resume
	stop := keepHeartbeating(ctx, heartbeatEvery, func() any { mu.Lock(); defer mu.Unlock(); return last })
	defer stop()
	return a.fineTune(ctx, in, resume, func(b fineTuneBeat) {
		mu.Lock()
		last = b
		mu.Unlock()
		heartbeat(ctx, b)
	})
}

func (a *Activities) fineTune(ctx context.Context, in workflows.FineTuneInput, resume fineTuneBeat, beat func(fineTuneBeat)) (workflows.FineTuneOutput, error) {
	var out workflows.FineTuneOutput
	p, err := fineTuneParams(in.Params)
	if err != nil {
		return out, err
	}
	if _, err := store.ParseRef(in.Base); err != nil {
		return out, badInput("base: %v", err)
	}
	key, err := memoKey(fineTuneEngineVersion, struct {
		Base   string                   `json:"base"`
		Params workflows.FineTuneParams `json:"params"`
	}{in.Base, p})
	if err != nil {
		return out, err
	}
	memo := store.MemoName("finetune", key)
	pointer := store.CheckpointName(key)
	if ok, err := a.loadMemo(ctx, memo, &out, func(v any) string { return v.(*workflows.FineTuneOutput).Ref }); err != nil {
		return out, err
	} else if ok {
		out.Cached = true
		return out, nil
	}

	l, err := a.fetchModel(ctx, "base", in.Base)
	if err != nil {
		return out, err
	}
	defer l.Close()
	base, err := llm.Load(l.Path, a.cfg.llmOptions())
	if err != nil {
		return out, badInput("base %s: %v", in.Base, err)
	}
	defer base.Close()
	data, err := a.trainingData(ctx, p, l.Path)
	if err != nil {
		return out, err
	}
	dir, cleanup, err := a.scratch("finetune")
	if err != nil {
		return out, err
	}
	defer cleanup()

	// Resume from whichever knows the later checkpoint: this activity's
	// heartbeat or the pointer a previous attempt left in the store.
	if b, err := a.cfg.Store.GetNamed(ctx, pointer); err == nil {
		var stored fineTuneBeat
		if json.Unmarshal(b, &stored) == nil && stored.Step > resume.Step {
			resume = stored
		}
	}
	resumePath := ""
	if resume.Checkpoint != "" {
		if r, err := store.ParseRef(resume.Checkpoint); err == nil {
			if ck, err := a.cfg.Store.Fetch(ctx, store.Blobs, r); err == nil {
				defer ck.Close()
				resumePath = ck.Path
			} else {
				a.info(ctx, "checkpoint unavailable, starting over", "checkpoint", resume.Checkpoint, "error", err)
				resume = fineTuneBeat{}
			}
		}
	}

	state := resume
	firstSeen := resumePath != "" && resume.FirstLoss != 0
	job := train.Job{
		Base: base, Data: data,
		Config:        trainConfig(p),
		ResumeFrom:    resumePath,
		CheckpointDir: filepath.Join(dir, "checkpoints"),
		OnCheckpoint: func(path string, step int) error {
			// The trainer also checkpoints when cancelled (worker stopping):
			// that one must still reach the store.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			ref, err := a.cfg.Store.PutFile(ctx, store.Blobs, path)
			if err != nil {
				return fmt.Errorf("store checkpoint: %w", err)
			}
			os.Remove(path)
			prev := state.Checkpoint
			state.Step, state.Checkpoint = step, ref.String()
			b, _ := json.Marshal(state)
			if err := a.cfg.Store.PutNamed(ctx, pointer, b); err != nil {
				return fmt.Errorf("store checkpoint pointer: %w", err)
			}
			beat(state)
			// The pointer names the new checkpoint, so the old one is garbage
			// (a heartbeat still naming it loses to the pointer's later step).
			if prev != "" && prev != state.Checkpoint {
				_ = a.cfg.Store.Delete(ctx, store.Blobs, store.Ref(prev))
			}
			return nil
		},
		Progress: func(pr train.Progress) {
			if !firstSeen {
				state.FirstLoss, firstSeen = pr.Loss, true
			}
			state.Step, state.Loss = pr.Step, pr.Loss
			beat(state)
		},
	}
	if err := os.MkdirAll(job.CheckpointDir, 0o755); err != nil {
		return out, err
	}
	a.info(ctx, "fine-tune", "label", in.Label, "base", in.Base, "resume_step", resume.Step)
	child, res, err := train.Run(ctx, job)
	if err != nil {
		switch {
		case errors.Is(err, train.ErrDiverged):
			return out, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("fine-tune %s: %v", in.Label, err), workflows.ErrTypeDiverged, err)
		case ctx.Err() != nil:
			return out, ctx.Err()
		}
		return out, fmt.Errorf("fine-tune %s: %w", in.Label, err)
	}
	defer child.Close()
	a.info(ctx, "fine-tuned", "label", in.Label, "backend", res.Backend, "steps", res.Steps)
	if math.IsNaN(res.FinalLoss) || math.IsInf(res.FinalLoss, 0) {
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("fine-tune %s: final loss %v", in.Label, res.FinalLoss), workflows.ErrTypeDiverged, nil)
	}
	dst := filepath.Join(dir, "child.gguf")
	if _, err := child.Save(dst); err != nil {
		return out, fmt.Errorf("save fine-tuned model: %w", err)
	}
	ref, err := a.cfg.Store.PutFile(ctx, store.Models, dst)
	if err != nil {
		return out, fmt.Errorf("store fine-tuned model: %w", err)
	}
	out = workflows.FineTuneOutput{
		Ref: ref.String(), FirstLoss: state.FirstLoss, FinalLoss: res.FinalLoss,
		Steps: p.Steps, Tokens: res.TokensTotal, ResumedFrom: res.ResumedAt,
	}
	if err := a.saveMemo(ctx, memo, out); err != nil {
		return out, err
	}
	// The result is safe: the last checkpoint and its pointer are garbage.
	if state.Checkpoint != "" {
		_ = a.cfg.Store.Delete(ctx, store.Blobs, store.Ref(state.Checkpoint))
	}
	_ = a.cfg.Store.DeleteNamed(ctx, pointer)
	return out, nil
}

// fineTuneParams fills defaults and rejects parameters no retry can fix,
// naming the field (workflows.FineTuneParams.Check, the one check of them,
// plus the datasets, which only the engines know).
func fineTuneParams(p workflows.FineTuneParams) (workflows.FineTuneParams, error) {
	p = p.WithDefaults()
	if errs := p.Check(); len(errs) > 0 {
		return p, badInput("params.%v", errs[0])
	}
	if len(p.Mixture) == 0 {
		if !slices.Contains(synth.Families(), p.Dataset) {
			return p, badInput("params.dataset: %q is not a synthetic family (%v)", p.Dataset, synth.Families())
		}
		return p, nil
	}
	if p.Dataset != "" {
		return p, badInput("params.dataset: %q given with a mixture; give one or the other", p.Dataset)
	}
	for i, m := range p.Mixture {
		f := fmt.Sprintf("params.mixture[%d]", i)
		switch {
		case (m.Family == "") == (m.Path == ""):
			return p, badInput("%s: give a path or a synthetic family", f)
		case m.Family != "" && !slices.Contains(synth.Families(), m.Family):
			return p, badInput("%s.family: %q is not a synthetic family (%v)", f, m.Family, synth.Families())
		case m.Path != "":
			if why := workflows.CheckDataRef(m.Path); why != "" {
				return p, badInput("%s.path: %s", f, why)
			}
		}
		if !(m.Weight > 0) || math.IsInf(m.Weight, 0) {
			return p, badInput("%s.weight: %v, want positive", f, m.Weight)
		}
	}
	return p, nil
}

// trainingData is a fine-tune's examples: p.Examples of a synthetic family,
// or drawn with p.Seed from the mixture's datasets (files read through
// internal/dataset, chat records rendered with the base model's chat
// template or p.ChatTemplate, so only assistant turns are learned).
func (a *Activities) trainingData(ctx context.Context, p workflows.FineTuneParams, baseGGUF string) ([]train.Example, error) {
	if len(p.Mixture) == 0 {
		pairs, err := synth.TrainPairs(p.Dataset, p.Examples, p.Seed)
		if err != nil {
			return nil, badInput("params.dataset: %v", err)
		}
		return trainExamples(pairs), nil
	}
	tpl, err := chatTemplate(baseGGUF, p.ChatTemplate)
	if err != nil {
		return nil, badInput("params.chat_template: %v", err)
	}
	sets := make([]dataset.Weighted, len(p.Mixture))
	for i, m := range p.Mixture {
		f := fmt.Sprintf("params.mixture[%d]", i)
		sets[i] = dataset.Weighted{Name: m.Family + m.Path, Weight: m.Weight}
		if m.Family != "" {
			pairs, err := synth.TrainPairs(m.Family, p.Examples, p.Seed+uint64(i))
			if err != nil {
				return nil, badInput("%s.family: %v", f, err)
			}
			sets[i].Examples = trainExamples(pairs)
			continue
		}
		l, err := a.fetchData(ctx, f+".path", m.Path)
		if err != nil {
			return nil, err
		}
		sets[i].Examples, err = dataset.Load(l.Path, dataset.Options{Template: tpl})
		l.Close()
		if err != nil {
			return nil, badInput("%s.path %s: %v", f, m.Path, err)
		}
	}
	ex, err := dataset.Sample(p.Seed, sets, p.Examples)
	if err != nil {
		return nil, badInput("params.mixture: %v", err)
	}
	return ex, nil
}

// chatTemplate is the template chat records are rendered with: override, or
// the model's own; nil when the model has none (a chat dataset is then
// refused by dataset.Load, naming the record).
func chatTemplate(modelGGUF, override string) (*dataset.ChatTemplate, error) {
	g, f, err := gguf.Open(modelGGUF)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tpl, err := dataset.TemplateFromGGUF(g, override)
	if errors.Is(err, dataset.ErrNoChatTemplate) {
		return nil, nil
	}
	return tpl, err
}
