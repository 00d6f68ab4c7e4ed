package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"go.temporal.io/sdk/temporal"

	"github.com/evomerge/evomerge/internal/eval"
	"github.com/evomerge/evomerge/internal/eval/engine"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// EvaluateProgress is the Evaluate activity's heartbeat detail.
type EvaluateProgress struct {
	Tasks int     `json:"tasks"`
	Total int     `json:"total"`
	Last  string  `json:"last"`
	Score float64 `json:"score"`
}

// Evaluate scores a model on a suite: any task internal/eval knows (native
// benchmarks, generic JSONL, synthetic), its data files fetched from the
// store by reference and verified. Task scores are cached in the store by
// model hash, task version (which hashes the data bytes), size and seed, so a
// retried evaluation, or a surviving model seen again next generation, costs
// nothing.
func (a *Activities) Evaluate(ctx context.Context, in workflows.EvaluateInput) (workflows.EvaluateOutput, error) {
	out := workflows.EvaluateOutput{Model: in.Model}
	if _, err := evalSuite(in.Suite); err != nil { // refused before anything is fetched
		return out, err
	}
	tasks, release, err := a.localData(ctx, in.Suite.Tasks)
	if err != nil {
		return out, err
	}
	defer release()
	local := in.Suite
	local.Tasks = tasks
	suite, err := evalSuite(local)
	if err != nil {
		return out, err
	}
	l, err := a.fetchModel(ctx, "model", in.Model)
	if err != nil {
		return out, err
	}
	defer l.Close()
	m, err := llm.Load(l.Path, a.cfg.llmOptions())
	if err != nil {
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("evaluate %s: load model: %v", in.Model, err), workflows.ErrTypeEvalFailed, err)
	}
	defer m.Close()
	// Progress is reported per task, but one task on a large model can outlast the heartbeat timeout:
	// a ticker keeps heartbeating the latest progress while the evaluation runs, so only a dead worker
	// (no heartbeats at all) makes the server retry it elsewhere.
	var mu sync.Mutex
	progress := EvaluateProgress{Total: len(suite.Tasks)}
	stop := keepHeartbeating(ctx, heartbeatEvery, func() any { mu.Lock(); defer mu.Unlock(); return progress })
	rep, err := eval.Evaluate(ctx, engine.FromModel(m), suite, eval.Options{
		Cache:       storeCache{a.cfg.Store},
		ModelSHA256: in.Model,
		Progress: func(done, total int, r eval.TaskResult) {
			mu.Lock()
			progress = EvaluateProgress{Tasks: done, Total: total, Last: r.Name, Score: r.Score}
			mu.Unlock()
			heartbeat(ctx, progress)
		},
	})
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("evaluate %s %s: %v", in.Label, in.Model, err), workflows.ErrTypeEvalFailed, err)
	}
	if math.IsNaN(rep.Fitness) || math.IsInf(rep.Fitness, 0) {
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("evaluate %s %s: fitness is %v", in.Label, in.Model, rep.Fitness), workflows.ErrTypeEvalFailed, nil)
	}
	out.Fitness = rep.Fitness
	out.Tasks, out.Items, out.Tokens, out.Cached = taskScores(in.Suite, rep)
	a.info(ctx, "evaluated", "label", in.Label, "model", in.Model, "fitness", out.Fitness, "tokens", out.Tokens, "cached", out.Cached)
	return out, nil
}

// storeCache keeps eval task results as named objects in the store, shared
// by every worker (store.EvalCacheName).
type storeCache struct{ st *store.Store }

type cachedTask struct {
	Key    eval.CacheKey   `json:"key"`
	Result eval.TaskResult `json:"result"`
}

func (c storeCache) name(key eval.CacheKey) (string, error) {
	r, err := store.ParseRef(key.Model)
	if err != nil {
		return "", err
	}
	return store.EvalCacheName(r.Hex(), key.Hash()), nil
}

func (c storeCache) Get(key eval.CacheKey) (eval.TaskResult, bool, error) {
	name, err := c.name(key)
	if err != nil {
		return eval.TaskResult{}, false, err
	}
	data, err := c.st.GetNamed(context.Background(), name)
	var ce *store.CorruptError
	if errors.Is(err, store.ErrNotFound) || errors.As(err, &ce) {
		return eval.TaskResult{}, false, nil // a damaged entry is recomputed
	}
	if err != nil {
		return eval.TaskResult{}, false, err
	}
	var e cachedTask
	if json.Unmarshal(data, &e) != nil || e.Key != key {
		return eval.TaskResult{}, false, nil
	}
	return e.Result, true, nil
}

func (c storeCache) Put(key eval.CacheKey, r eval.TaskResult) error {
	name, err := c.name(key)
	if err != nil {
		return err
	}
	data, err := json.Marshal(cachedTask{Key: key, Result: r})
	if err != nil {
		return err
	}
	return c.st.PutNamed(context.Background(), name, data)
}
