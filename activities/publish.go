package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ollama/ollama/api"

	"github.com/evomerge/evomerge/internal/atomicfile"
	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// LineageRecord is what Publish writes to lineages/<name>/population.json and
// InitPopulation reads to continue a lineage.
type LineageRecord struct {
	Run        string                    `json:"run"`
	Winner     string                    `json:"winner"`
	Base       string                    `json:"base,omitempty"`
	Population []workflows.LineageMember `json:"population"`
}

// WinnerRecord is what a "store" publish writes to runs/<name>/winner.json.
type WinnerRecord struct {
	Run   string `json:"run"`
	Model string `json:"model"` // the GGUF: models/<hex>.gguf
	// HF is the winner as a Hugging Face folder (config.json, model.safetensors, tokenizer files):
	// each file's name and its content-addressed object, blobs/<hex>.
	HF map[string]string `json:"hf,omitempty"`
}

func lineageKey(name string) string { return store.LineageName(name) }

// Publish delivers the winner to its target and, when a lineage is named,
// records the population so a later run can continue from it. Every target is
// idempotent: publishing the same model twice leaves the same result.
func (a *Activities) Publish(ctx context.Context, in workflows.PublishInput) (workflows.PublishOutput, error) {
	var out workflows.PublishOutput
	if _, err := store.ParseRef(in.Model); err != nil {
		return out, badInput("model: %v", err)
	}
	if in.Lineage != "" {
		if err := store.ValidateName(lineageKey(in.Lineage)); err != nil {
			return out, badInput("lineage: %v", err)
		}
		for i, m := range in.Population {
			if _, err := store.ParseRef(m.Ref); err != nil {
				return out, badInput("population[%d].ref: %v", i, err)
			}
		}
	}
	l, err := a.fetchModel(ctx, "model", in.Model)
	if err != nil {
		return out, err
	}
	defer l.Close()

	switch in.Target.Kind {
	case "path":
		out.Location, err = publishPath(in.Target.Path, l, in.Model)
		if err == nil {
			// The winner also goes out as a Hugging Face folder beside the GGUF.
			var dir string
			if dir, err = publishHF(out.Location); err == nil {
				a.info(ctx, "published Hugging Face folder", "model", in.Model, "folder", dir)
			}
		}
	case "store", "":
		out.Location, err = a.publishStore(ctx, in, l.Path)
	case "ollama":
		out.Location, err = publishOllama(ctx, in.Target, l, in.Model)
	default:
		return out, badInput("target.kind: unknown kind %q (want path, store or ollama)", in.Target.Kind)
	}
	if err != nil {
		return out, err
	}
	if in.Lineage != "" {
		rec, _ := json.Marshal(LineageRecord{Run: in.Run, Winner: in.Model, Base: in.Base, Population: in.Population})
		if err := a.cfg.Store.PutNamed(ctx, lineageKey(in.Lineage), rec); err != nil {
			return out, fmt.Errorf("record lineage %s: %w", in.Lineage, err)
		}
	}
	a.info(ctx, "published", "model", in.Model, "location", out.Location)
	return out, nil
}

// publishPath copies the model to path through a temporary sibling, so the
// path holds either the previous file or the complete new one.
func publishPath(path string, l *store.Local, ref string) (string, error) {
	if path == "" {
		return "", badInput("target.path: empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", badInput("target.path %q: %v", path, err)
	}
	if got, _, err := store.HashFile(abs); err == nil && got.String() == ref {
		return abs, nil // already there
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", fmt.Errorf("target.path: %w", err)
	}
	src, err := os.Open(l.Path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	if _, err := atomicfile.Write(abs, func(w io.Writer) error { _, err := io.Copy(w, src); return err }); err != nil {
		return "", fmt.Errorf("target.path: %w", err)
	}
	return abs, nil
}

// publishStore records the winner under runs/<name>/winner.json: its GGUF
// (already in the store) and its Hugging Face folder, exported and stored file
// by file under their sha256 (a second publish stores the same objects).
func (a *Activities) publishStore(ctx context.Context, in workflows.PublishInput, gguf string) (string, error) {
	name := in.Target.Name
	if name == "" {
		name = in.Run
	}
	key := store.WinnerName(name)
	if err := store.ValidateName(key); err != nil {
		return "", badInput("target.name: %v", err)
	}
	tmp, done, err := a.scratch("hf-export")
	if err != nil {
		return "", err
	}
	defer done()
	dir := filepath.Join(tmp, "hf")
	if err := hf.Export(gguf, dir); err != nil {
		return "", fmt.Errorf("publish HF folder: %w", err)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	manifest := map[string]string{}
	for _, f := range files {
		r, err := a.cfg.Store.PutFile(ctx, store.Blobs, filepath.Join(dir, f.Name()))
		if err != nil {
			return "", fmt.Errorf("publish HF folder: %s: %w", f.Name(), err)
		}
		manifest[f.Name()] = r.String()
	}
	rec, _ := json.Marshal(WinnerRecord{Run: in.Run, Model: in.Model, HF: manifest})
	if err := a.cfg.Store.PutNamed(ctx, key, rec); err != nil {
		return "", err
	}
	return a.cfg.Store.String() + " " + key, nil
}

// publishOllama uploads the GGUF as a blob and creates a model from it, so
// `ollama run <name>` serves the winner. Ollama serves GGUF: no Hugging Face
// folder goes there.
func publishOllama(ctx context.Context, t workflows.PublishTarget, l *store.Local, ref string) (string, error) {
	if t.Name == "" {
		return "", badInput("target.name: an Ollama model name is required")
	}
	var client *api.Client
	if t.Host != "" {
		host := t.Host
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		u, err := url.Parse(host)
		if err != nil {
			return "", badInput("target.host %q: %v", t.Host, err)
		}
		client = api.NewClient(u, http.DefaultClient)
	} else {
		var err error
		if client, err = api.ClientFromEnvironment(); err != nil {
			return "", badInput("OLLAMA_HOST: %v", err)
		}
	}
	f, err := os.Open(l.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := client.CreateBlob(ctx, ref, f); err != nil {
		return "", fmt.Errorf("ollama: upload blob %s: %w", ref, err)
	}
	var last string
	err = client.Create(ctx, &api.CreateRequest{
		Model: t.Name,
		Files: map[string]string{"model.gguf": ref},
		// Byte-level models have no chat format: pass prompts through.
		Template: "{{ .Prompt }}",
	}, func(p api.ProgressResponse) error {
		last = p.Status
		heartbeat(ctx, p.Status)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("ollama: create %s: %w", t.Name, err)
	}
	if last != "" && last != "success" {
		return "", fmt.Errorf("ollama: create %s ended with status %q", t.Name, last)
	}
	return "ollama:" + t.Name, nil
}
