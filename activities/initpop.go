package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// InitPopulation creates generation 0 from the first source the input names:
// a lineage's last published population, model files to import, or the demo
// (a tiny base pretrained from nothing plus one fine-tuned specialist per
// member). The demo is memoised by its spec and seed, so a second run skips it.
func (a *Activities) InitPopulation(ctx context.Context, in workflows.InitPopulationInput) (workflows.InitPopulationOutput, error) {
	var out workflows.InitPopulationOutput
	if in.Size < 2 {
		return out, badInput("size: %d, want at least 2", in.Size)
	}
	if in.ContinueLineage != "" {
		out, ok, err := a.continueLineage(ctx, in)
		if err != nil || ok {
			return out, err
		}
	}
	switch {
	case len(in.Models) > 0:
		return a.importModels(ctx, in)
	case in.Demo != nil:
		return a.demoPopulation(ctx, in)
	}
	return out, badInput("init: no source (continue_lineage without a published population, no models, no demo)")
}

func (a *Activities) continueLineage(ctx context.Context, in workflows.InitPopulationInput) (workflows.InitPopulationOutput, bool, error) {
	var out workflows.InitPopulationOutput
	key := lineageKey(in.ContinueLineage)
	if err := store.ValidateName(key); err != nil {
		return out, false, badInput("continue_lineage: %v", err)
	}
	data, err := a.cfg.Store.GetNamed(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return out, false, nil // first run of the lineage: fall through
	}
	if err != nil {
		return out, false, storeError("continue_lineage "+in.ContinueLineage, err)
	}
	var rec LineageRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return out, false, badInput("continue_lineage %s: %s is not a lineage record: %v", in.ContinueLineage, key, err)
	}
	if len(rec.Population) == 0 {
		return out, false, badInput("continue_lineage %s: the recorded population is empty", in.ContinueLineage)
	}
	// Every recorded member, with its recorded fitness: the workflow keeps
	// the best of them (selection is the workflow's).
	out.Source = workflows.SourceLineage
	for i, m := range rec.Population {
		r, err := store.ParseRef(m.Ref)
		if err != nil {
			return out, false, badInput("continue_lineage %s: population[%d]: %v", in.ContinueLineage, i, err)
		}
		if ok, err := a.cfg.Store.Has(ctx, store.Models, r); err != nil {
			return out, false, err
		} else if !ok {
			return out, false, badInput("continue_lineage %s: member #%d model %s is not in the store", in.ContinueLineage, m.ID, m.Ref)
		}
		// The new run scores them again (its suite may differ; the
		// evaluation cache makes re-scoring an unchanged suite free).
		out.Members = append(out.Members, workflows.InitMember{
			Ref:            m.Ref,
			Origin:         fmt.Sprintf("lineage %s (run %s) #%d", in.ContinueLineage, rec.Run, m.ID),
			LineageFitness: m.Fitness,
		})
	}
	out.Base = rec.Base
	return out, true, nil
}

func (a *Activities) importModels(ctx context.Context, in workflows.InitPopulationInput) (workflows.InitPopulationOutput, error) {
	out := workflows.InitPopulationOutput{Source: workflows.SourceImport}
	for i, src := range in.Models {
		ref, err := a.importModel(ctx, fmt.Sprintf("models[%d]", i), src)
		if err != nil {
			return out, err
		}
		out.Members = append(out.Members, workflows.InitMember{Ref: ref, Origin: "import " + src})
		heartbeat(ctx, i+1)
	}
	if in.Base != "" {
		ref, err := a.importModel(ctx, "base", in.Base)
		if err != nil {
			return out, err
		}
		out.Base = ref
	}
	return out, nil
}

// importModel puts one model into the store: an existing reference is
// checked, a path or URL is read and stored by content.
func (a *Activities) importModel(ctx context.Context, field, src string) (string, error) {
	if strings.HasPrefix(src, "sha256:") {
		r, err := store.ParseRef(src)
		if err != nil {
			return "", badInput("%s: %v", field, err)
		}
		ok, err := a.cfg.Store.Has(ctx, store.Models, r)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", badInput("%s: %s is not in the store %s", field, src, a.cfg.Store)
		}
		return src, nil
	}
	if local, s3, ok := hfFolderSource(src); ok {
		return a.importHFFolder(ctx, field, src, local, s3)
	}
	rc, err := store.OpenURL(ctx, src)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", badInput("%s: %v", field, err)
		}
		return "", fmt.Errorf("%s: %w", field, err)
	}
	defer rc.Close()
	if err := checkGGUFMagic(rc); err != nil {
		return "", badInput("%s %s: %v", field, src, err)
	}
	rc.Close()
	// Reopen: the magic check consumed the first bytes.
	rc, err = store.OpenURL(ctx, src)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	defer rc.Close()
	ref, err := a.cfg.Store.Put(ctx, store.Models, rc)
	if err != nil {
		return "", fmt.Errorf("%s: store %s: %w", field, src, err)
	}
	return ref.String(), nil
}

func checkGGUFMagic(r interface{ Read([]byte) (int, error) }) error {
	var magic [4]byte
	n := 0
	for n < 4 {
		m, err := r.Read(magic[n:])
		n += m
		if err != nil {
			break
		}
	}
	if n < 4 || string(magic[:]) != "GGUF" {
		return errors.New("not a GGUF file (no GGUF magic)")
	}
	return nil
}
