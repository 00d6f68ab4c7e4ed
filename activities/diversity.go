package activities

import (
	"context"
	"fmt"
	"sync"

	"github.com/evomerge/evomerge/internal/diversity"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// diversityEngineVersion is part of every diversity memo's key.
const diversityEngineVersion = "diversity-1"

// DiversityProgress is the Diversity activity's heartbeat detail.
type DiversityProgress struct {
	Tensors int `json:"tensors"`
	Total   int `json:"total"`
}

// Diversity measures a population's diversity: task-vector distances from
// the ancestor (memoised by the ancestor and models, so a replayed or
// repeated measurement is free) and the spread of the given scores.
func (a *Activities) Diversity(ctx context.Context, in workflows.DiversityInput) (workflows.DiversityOutput, error) {
	var out workflows.DiversityOutput
	if len(in.Models) < 2 {
		return out, badInput("models: %d given, at least 2 are needed", len(in.Models))
	}
	if len(in.Scores) != len(in.Models) {
		return out, badInput("scores: %d given for %d models", len(in.Scores), len(in.Models))
	}
	if in.Ancestor != "" {
		if _, err := store.ParseRef(in.Ancestor); err != nil {
			return out, badInput("ancestor: %v", err)
		}
	}
	for i, r := range in.Models {
		if _, err := store.ParseRef(r); err != nil {
			return out, badInput("models[%d]: %v", i, err)
		}
	}
	spread, err := diversity.FitnessSpread(in.Scores)
	if err != nil {
		return out, badInput("scores: %v", err)
	}
	key, err := memoKey(diversityEngineVersion, struct {
		Ancestor string   `json:"ancestor"`
		Models   []string `json:"models"`
	}{in.Ancestor, in.Models})
	if err != nil {
		return out, err
	}
	memo := store.MemoName("diversity", key)
	var wd diversity.Weights
	cached, err := a.loadMemo(ctx, memo, &wd)
	if err != nil {
		return out, err
	}
	if !cached {
		if wd, err = a.measureWeights(ctx, in); err != nil {
			return out, err
		}
		if err := a.saveMemo(ctx, memo, wd); err != nil {
			return out, err
		}
	}
	out = workflows.DiversityOutput{
		GenDiversity: workflows.GenDiversity{
			MeanDistance: wd.MeanDistance, MinDistance: wd.MinDistance, MaxDistance: wd.MaxDistance, Ancestor: in.Ancestor,
			FitnessMean: spread.Mean, FitnessStd: spread.Std, FitnessMin: spread.Min, FitnessMax: spread.Max,
		},
		Cosine: wd.Cosine, Cached: cached,
	}
	a.info(ctx, "diversity", "label", in.Label, "models", len(in.Models), "mean_distance", wd.MeanDistance, "fitness_std", spread.Std, "cached", cached)
	return out, nil
}

func (a *Activities) measureWeights(ctx context.Context, in workflows.DiversityInput) (diversity.Weights, error) {
	var mu sync.Mutex
	var progress DiversityProgress
	stop := keepHeartbeating(ctx, heartbeatEvery, func() any { mu.Lock(); defer mu.Unlock(); return progress })
	defer stop()
	ancestor := ""
	if in.Ancestor != "" {
		l, err := a.fetchModel(ctx, "ancestor", in.Ancestor)
		if err != nil {
			return diversity.Weights{}, err
		}
		defer l.Close()
		ancestor = l.Path
	}
	paths := make([]string, len(in.Models))
	for i, ref := range in.Models {
		l, err := a.fetchModel(ctx, fmt.Sprintf("models[%d]", i), ref)
		if err != nil {
			return diversity.Weights{}, err
		}
		defer l.Close()
		paths[i] = l.Path
	}
	wd, err := diversity.TaskVectors(ctx, ancestor, paths, diversity.Options{Progress: func(done, total int) {
		mu.Lock()
		progress = DiversityProgress{Tensors: done, Total: total}
		mu.Unlock()
		heartbeat(ctx, progress)
	}})
	if err != nil {
		if ctx.Err() != nil {
			return wd, ctx.Err()
		}
		// The inputs are verified store objects: what fails is the models
		// themselves (different tensors or shapes), which no retry fixes.
		return wd, badInput("diversity %s: %v", in.Label, err)
	}
	return wd, nil
}
