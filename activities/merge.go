package activities

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/evomerge/evomerge/internal/merge"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// mergeEngineVersion is part of every merge's output key: bump it when the
// merge engine's output bytes change for the same spec.
const mergeEngineVersion = "merge-1"

// MergeProgress is the Merge activity's heartbeat detail.
type MergeProgress struct {
	Tensors int `json:"tensors"`
	Total   int `json:"total"`
}

// Merge crosses the input models over with the genome's method and stores
// the child. The output key is derived from the inputs and the genome, so a
// retry (or the same merge in another run) returns the stored child at once.
func (a *Activities) Merge(ctx context.Context, in workflows.MergeInput) (workflows.MergeOutput, error) {
	spec, err := checkedMergeSpec(in)
	if err != nil {
		return workflows.MergeOutput{}, err
	}
	key, err := memoKey(mergeEngineVersion, struct {
		Inputs []string   `json:"inputs"`
		Spec   merge.Spec `json:"spec"`
	}{in.Inputs, spec})
	if err != nil {
		return workflows.MergeOutput{}, err
	}
	memo := store.MemoName("merge", key)
	var out workflows.MergeOutput
	if ok, err := a.loadMemo(ctx, memo, &out, func(v any) string { return v.(*workflows.MergeOutput).Ref }); err != nil {
		return out, err
	} else if ok {
		out.Cached = true
		return out, nil
	}

	// Heartbeat the latest progress while fetching parents and storing the child too: a store that
	// retries through an outage must not look like a dead worker.
	var mu sync.Mutex
	var progress MergeProgress
	stop := keepHeartbeating(ctx, heartbeatEvery, func() any { mu.Lock(); defer mu.Unlock(); return progress })
	defer stop()
	paths := make([]string, len(in.Inputs))
	for i, ref := range in.Inputs {
		l, err := a.fetchModel(ctx, fmt.Sprintf("inputs[%d]", i), ref)
		if err != nil {
			return out, err
		}
		defer l.Close()
		paths[i] = l.Path
	}
	dir, cleanup, err := a.scratch("merge")
	if err != nil {
		return out, err
	}
	defer cleanup()
	dst := filepath.Join(dir, "child.gguf")
	a.info(ctx, "merge", "label", in.Label, "method", spec.Method, "inputs", len(in.Inputs))
	res, err := merge.Merge(ctx, paths, dst, spec, a.cfg.mergeOptions(func(done, total int) {
		mu.Lock()
		progress = MergeProgress{Tensors: done, Total: total}
		mu.Unlock()
		heartbeat(ctx, progress)
	}))
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		// The spec was validated above and the inputs verified: what fails
		// now is the models themselves (mismatched shapes or vocabularies),
		// which no retry fixes.
		return out, badInput("merge %s: %v", in.Label, err)
	}
	ref, err := a.cfg.Store.PutFile(ctx, store.Models, dst)
	if err != nil {
		return out, fmt.Errorf("store merged child: %w", err)
	}
	if ref.Hex() != res.SHA256 {
		return out, fmt.Errorf("merge: engine reported sha256 %s but the file hashes to %s", res.SHA256, ref.Hex())
	}
	out = workflows.MergeOutput{Ref: ref.String(), Bytes: res.Bytes}
	if err := a.saveMemo(ctx, memo, out); err != nil {
		return out, err
	}
	return out, nil
}

// checkedMergeSpec is the engine's spec of the input's genome, validated
// against the inputs; a bad one is a non-retryable error naming the field.
func checkedMergeSpec(in workflows.MergeInput) (merge.Spec, error) {
	if len(in.Inputs) == 0 {
		return merge.Spec{}, badInput("inputs: no models to merge")
	}
	for i, r := range in.Inputs {
		if _, err := store.ParseRef(r); err != nil {
			return merge.Spec{}, badInput("inputs[%d]: %v", i, err)
		}
	}
	spec := mergeSpec(in.Genome)
	if err := spec.Validate(len(in.Inputs)); err != nil {
		return merge.Spec{}, badInput("genome.%v", err)
	}
	return spec, nil
}
