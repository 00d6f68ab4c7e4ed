package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// fetchData resolves a data reference (workflows.CheckDataRef) to a verified
// local file in the worker's cache. A store:<sha256> reference is fetched and
// checked against its hash; a path, file:// or s3:// reference (a workflow
// started without the starter) is first copied into the store, so every
// worker reads the same bytes. A corrupt object is a Corrupt error, which the
// workflow retries (the next attempt fetches it again); a missing one is bad
// input.
func (a *Activities) fetchData(ctx context.Context, field, ref string) (*store.Local, error) {
	if why := workflows.CheckDataRef(ref); why != "" {
		return nil, badInput("%s: %s", field, why)
	}
	r, err := a.dataRef(ctx, field, ref)
	if err != nil {
		return nil, err
	}
	l, err := a.cfg.Store.Fetch(ctx, store.Data, r)
	if errors.Is(err, store.ErrNotFound) {
		return nil, badInput("%s: %s is not in the store %s (starter start uploads a run's data files)", field, ref, a.cfg.Store)
	}
	if err != nil {
		return nil, storeError(field+" "+ref, err)
	}
	return l, nil
}

// dataRef is the store reference of a data reference, importing the bytes
// of a non-store one.
func (a *Activities) dataRef(ctx context.Context, field, ref string) (store.Ref, error) {
	if workflows.IsStoreRef(ref) {
		return store.RefFromHex(strings.TrimPrefix(ref, workflows.StorePrefix))
	}
	rc, err := store.OpenURL(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return "", badInput("%s: %s: no such file", field, ref)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	defer rc.Close()
	r, err := a.cfg.Store.Put(ctx, store.Data, rc)
	if err != nil {
		return "", fmt.Errorf("%s: import %s into the store: %w", field, ref, err)
	}
	return r, nil
}

// localData resolves every data reference of tasks to a local file (in a
// copy of the tasks); close releases the files.
func (a *Activities) localData(ctx context.Context, tasks []workflows.TaskSpec) (out []workflows.TaskSpec, close func(), err error) {
	var held []*store.Local
	close = func() {
		for _, l := range held {
			l.Close()
		}
	}
	out = append([]workflows.TaskSpec(nil), tasks...)
	for i := range out {
		for _, f := range []struct {
			name string
			ref  *string
		}{{"path", &out[i].Path}, {"fewshot_path", &out[i].FewshotPath}} {
			if *f.ref == "" {
				continue
			}
			l, err := a.fetchData(ctx, fmt.Sprintf("suite.tasks[%d].%s", i, f.name), *f.ref)
			if err != nil {
				close()
				return nil, func() {}, err
			}
			held = append(held, l)
			*f.ref = l.Path
		}
	}
	return out, close, nil
}
