// Command llamacpp compares the engine with real llama.cpp (`make check-llamacpp`): it writes the models of
// internal/llm/refcheck as GGUF, runs them through llama.cpp (node-llama-cpp's prebuilt CPU build, via
// reference.mjs) and through internal/llm, and prints per model the largest logit difference, argmax agreement
// and whether the greedy continuations match. With -update it rewrites the golden file `go test` compares with.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/llm/refcheck"
	"github.com/evomerge/evomerge/internal/merge"
	"github.com/evomerge/evomerge/internal/train"
)

func main() {
	dir := flag.String("dir", ".cache/llamacpp-check", "work folder for the models and outputs")
	npm := flag.String("npm", ".cache/node-llama-cpp", "folder node-llama-cpp is installed in (its node_modules)")
	golden := flag.String("golden", "internal/llm/refcheck/testdata/llamacpp-golden.json", "golden file")
	update := flag.Bool("update", false, "rewrite the golden file from this run")
	tokenize := flag.String("tokenize", "", `also tokenize with llama.cpp: a JSON file [{"name", "vocab": GGUF path, "texts": [...]}]; the ids go to <dir>/tokenize.json`)
	flag.Parse()
	if err := run(*dir, *npm, *golden, *tokenize, *update); err != nil {
		fmt.Fprintln(os.Stderr, "check-llamacpp:", err)
		os.Exit(1)
	}
}

type manifestModel struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Context int    `json:"context"`
	Vocab   int    `json:"vocab"`
}

type reference struct {
	LlamaCpp string            `json:"llama_cpp"`
	Tokenize []json.RawMessage `json:"tokenize"`
	Models   []struct {
		Name   string      `json:"name"`
		Logits [][]float32 `json:"logits"`
		Greedy []int32     `json:"greedy"`
	} `json:"models"`
}

type ours struct {
	sha    string
	logits [][]float32
	greedy []int32
}

func run(dir, npm, goldenPath, tokenize string, update bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	variants := refcheck.Variants()
	mine := map[string]ours{}
	var models []manifestModel
	for _, v := range variants {
		m, err := refcheck.Build(v)
		if err != nil {
			return fmt.Errorf("%s: %w", v.Name(), err)
		}
		path := filepath.Join(abs, v.Name()+".gguf")
		sha, err := m.Save(path)
		if err != nil {
			m.Close()
			return err
		}
		logits, greedy, err := refcheck.Measure(m)
		m.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", v.Name(), err)
		}
		mine[v.Name()] = ours{sha, logits, greedy}
		models = append(models, manifestModel{v.Name(), path, v.Config.Context, v.Config.Vocab})
	}
	// Models the engine derives — a merge, a full fine-tune, a LoRA fine-tune — must load in llama.cpp with
	// the same logits too. They are compared live only (no golden: training's bits may change with its speed
	// work, and the golden must stay regenerable).
	derived, err := deriveModels(abs)
	if err != nil {
		return err
	}
	for _, d := range derived {
		m, err := llm.Load(d.path, llm.Options{Threads: 1})
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		logits, greedy, err := refcheck.Measure(m)
		m.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		mine[d.name] = ours{"", logits, greedy}
		models = append(models, manifestModel{d.name, d.path, d.cfg.Context, d.cfg.Vocab})
	}
	manifest := map[string]any{"models": models, "prompt": refcheck.Prompt(), "greedy_prompt": refcheck.GreedyPrompt,
		"greedy_new": refcheck.GreedyNew, "threads": 1}
	if tokenize != "" {
		b, err := os.ReadFile(tokenize)
		if err != nil {
			return err
		}
		var tk []map[string]any
		if err := json.Unmarshal(b, &tk); err != nil {
			return fmt.Errorf("%s: %w", tokenize, err)
		}
		manifest["tokenize"] = tk
	}
	mpath, opath := filepath.Join(abs, "manifest.json"), filepath.Join(abs, "llamacpp.json")
	b, _ := json.Marshal(manifest)
	if err := os.WriteFile(mpath, b, 0o644); err != nil {
		return err
	}
	// ES modules resolve packages from the script's folder upwards: run a copy beside node_modules.
	script, err := os.ReadFile("infra/llamacpp/reference.mjs")
	if err != nil {
		return err
	}
	spath := filepath.Join(npm, "reference.mjs")
	if err := os.WriteFile(spath, script, 0o644); err != nil {
		return err
	}
	cmd := exec.Command("node", spath, mpath, opath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("node reference.mjs: %w", err)
	}
	var ref reference
	if b, err = os.ReadFile(opath); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		return err
	}
	fmt.Printf("llama.cpp: %s\n%-26s %12s %9s %7s\n", ref.LlamaCpp, "model", "max|dlogit|", "argmax", "greedy")
	g := refcheck.Golden{LlamaCpp: ref.LlamaCpp}
	failed := 0
	all := slices.Clone(variants)
	for _, d := range derived {
		all = append(all, refcheck.Variant{Shape: d.name, Config: d.cfg, Type: d.typ})
	}
	for i, v := range all {
		r := ref.Models[i]
		o := mine[models[i].Name]
		if r.Name != models[i].Name || len(r.Logits) != len(o.logits) {
			return fmt.Errorf("llama.cpp output for %s does not line up", models[i].Name)
		}
		var maxd float64
		agree := 0
		for p := range o.logits {
			for j := range o.logits[p] {
				maxd = math.Max(maxd, math.Abs(float64(o.logits[p][j]-r.Logits[p][j])))
			}
			if refcheck.Argmax(o.logits[p]) == refcheck.Argmax(r.Logits[p]) {
				agree++
			}
		}
		same := slices.Equal(o.greedy, r.Greedy)
		verdict := ""
		if maxd > refcheck.Tolerance(v.Type) || !same {
			verdict = "  FAIL"
			failed++
		}
		fmt.Printf("%-26s %12.3g %6d/%-2d %7v%s\n", models[i].Name, maxd, agree, len(o.logits), same, verdict)
		if i < len(variants) {
			g.Models = append(g.Models, refcheck.NewGoldenModel(v.Name(), o.sha, r.Logits, r.Greedy))
		}
	}
	if len(ref.Tokenize) > 0 {
		b, _ := json.Marshal(ref.Tokenize)
		tpath := filepath.Join(abs, "tokenize.json")
		if err := os.WriteFile(tpath, b, 0o644); err != nil {
			return err
		}
		fmt.Println("llama.cpp tokenization written to", tpath)
	}
	if update {
		// One model a line: small, and a diff shows which models changed.
		head, _ := json.Marshal(g.LlamaCpp)
		b := []byte(`{"llama_cpp": ` + string(head) + `, "models": [` + "\n")
		for i, m := range g.Models {
			line, _ := json.Marshal(m)
			b = append(b, line...)
			if i < len(g.Models)-1 {
				b = append(b, ',')
			}
			b = append(b, '\n')
		}
		b = append(b, "]}\n"...)
		if err := os.WriteFile(goldenPath, b, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", goldenPath)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d models differ from llama.cpp beyond tolerance", failed, len(all))
	}
	return nil
}

type derivedModel struct {
	name, path string
	cfg        llm.Config
	typ        gguf.Type
}

// deriveModels writes a linear merge of two qwen2 models, a full fine-tune of a qwen3 model and a LoRA
// fine-tune of the rope_freqs llama, each through the engine's own merge and training code.
func deriveModels(dir string) ([]derivedModel, error) {
	shape := func(name string, t gguf.Type) refcheck.Variant {
		for _, s := range refcheck.Shapes() {
			if s.Shape == name {
				s.Type = t
				return s
			}
		}
		panic("no shape " + name)
	}
	save := func(v refcheck.Variant, path string) error {
		m, err := refcheck.Build(v)
		if err != nil {
			return err
		}
		defer m.Close()
		_, err = m.Save(path)
		return err
	}
	var out []derivedModel
	// Merge.
	a, b := shape("qwen2", gguf.TypeF16), shape("qwen2", gguf.TypeF16)
	b.Shape += "-other"
	pa, pb := filepath.Join(dir, "merge-parent-a.gguf"), filepath.Join(dir, "merge-parent-b.gguf")
	if err := save(a, pa); err != nil {
		return nil, err
	}
	if err := save(b, pb); err != nil {
		return nil, err
	}
	merged := filepath.Join(dir, "qwen2-merged-f16.gguf")
	if _, err := merge.Merge(context.Background(), []string{pa, pb}, merged, merge.Spec{Method: "slerp", Base: 0,
		Global: map[string]merge.Param{"t": merge.Const(0.4)}}, merge.Options{Parallelism: 1}); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	out = append(out, derivedModel{"qwen2-merged-f16", merged, a.Config, a.Type})
	// Fine-tunes.
	texts := []train.Example{{Text: "the quick brown fox jumps over the lazy dog"}, {Prompt: "2+2=", Completion: "4"}}
	for _, ft := range []struct {
		name   string
		v      refcheck.Variant
		config train.Config
	}{
		{"qwen3-full-ft-f32", shape("qwen3", gguf.TypeF32), train.Config{Steps: 4, LR: 1e-3, BatchSize: 2, Seed: 1}},
		{"llama-rope-freqs-lora-f32", shape("llama-rope-freqs", gguf.TypeF32), train.Config{Method: "lora", Steps: 4,
			LR: 1e-2, BatchSize: 2, Rank: 4, Alpha: 8, Targets: []string{"q", "k", "v", "o"}, Seed: 1}},
	} {
		base, err := refcheck.Build(ft.v)
		if err != nil {
			return nil, err
		}
		m, _, err := train.Run(context.Background(), train.Job{Base: base, Data: texts, Config: ft.config})
		base.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ft.name, err)
		}
		path := filepath.Join(dir, ft.name+".gguf")
		_, err = m.Save(path)
		m.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, derivedModel{ft.name, path, ft.v.Config, ft.v.Type})
	}
	return out, nil
}
