// Command llamacpp compares the engine with real llama.cpp (`make check-llamacpp`): it writes the models of
// internal/llm/refcheck as GGUF, runs them through llama.cpp (node-llama-cpp's prebuilt CPU build, via
// reference.mjs) and through internal/llm, and prints per model the largest logit difference, argmax agreement
// and whether the greedy continuations match. With -update it rewrites the golden file `go test` compares with.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/evomerge/evomerge/internal/llm/refcheck"
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
	for i, v := range variants {
		r := ref.Models[i]
		o := mine[v.Name()]
		if r.Name != v.Name() || len(r.Logits) != len(o.logits) {
			return fmt.Errorf("llama.cpp output for %s does not line up", v.Name())
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
		fmt.Printf("%-26s %12.3g %6d/%-2d %7v%s\n", v.Name(), maxd, agree, len(o.logits), same, verdict)
		g.Models = append(g.Models, refcheck.NewGoldenModel(v.Name(), o.sha, r.Logits, r.Greedy))
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
		return fmt.Errorf("%d of %d models differ from llama.cpp beyond tolerance", failed, len(variants))
	}
	return nil
}
