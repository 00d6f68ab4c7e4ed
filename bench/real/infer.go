package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
)

//go:embed llamacpp.mjs
var llamacppScript []byte

// Seed drives every random choice of the inference rows: weights and token ids.
const Seed = 20261202

type inferShape struct {
	name string
	cfg  llm.Config
}

var inferShapes = []inferShape{
	// tiny is for checking the path quickly (infra/gpu-check.sh --device cpu), not a figure of the issue.
	{"tiny", llm.Config{Vocab: 512, Dim: 128, Layers: 2, Heads: 4, KVHeads: 2, FFN: 256, Context: 2048, RopeBase: 10000, NormEps: 1e-5}},
	{"106m", llm.Config{Vocab: 49152, Dim: 576, Layers: 30, Heads: 9, KVHeads: 3, FFN: 1536, Context: 2048, RopeBase: 10000, NormEps: 1e-5}},
	{"tinyllama", llm.Config{Vocab: 32000, Dim: 2048, Layers: 22, Heads: 32, KVHeads: 4, FFN: 5632, Context: 2048, RopeBase: 10000, NormEps: 1e-5}},
}

var inferTypes = map[string]gguf.Type{"f32": gguf.TypeF32, "f16": gguf.TypeF16, "bf16": gguf.TypeBF16, "q8_0": gguf.TypeQ8_0}

func pickShapes(list string) ([]inferShape, error) {
	var out []inferShape
	for _, n := range strings.Split(list, ",") {
		found := false
		for _, s := range inferShapes {
			if s.name == strings.TrimSpace(n) {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("-infer-shapes %q: unknown shape %q (want 106m, tinyllama or tiny)", list, n)
		}
	}
	return out, nil
}

func pickTypes(list string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(list, ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		if _, ok := inferTypes[n]; !ok {
			return nil, fmt.Errorf("-types %q: unknown type %q (want f32, f16, bf16 or q8_0)", list, n)
		}
		out = append(out, n)
	}
	return out, nil
}

type inferOptions struct {
	shapes      []inferShape
	types       []string
	threads     []int
	npm, models string
	reps, gen   int
	device      string // the engine's device: cpu or cuda
	cudaLib     string
	llamacpp    bool // run the llama.cpp reference beside the engine (CPU only)
}

// workload is what both engines run, as token ids: written once per shape, read by each child process.
type workload struct {
	Model        string    `json:"model"`
	Threads      int       `json:"threads"`
	Device       string    `json:"device"`
	CUDALibrary  string    `json:"cuda_library"`
	Context      int       `json:"context"`
	Reps         int       `json:"reps"`
	Prompt       []int32   `json:"prompt"`        // prompt processing: 500 tokens, logits for the last only
	ScoreContext []int32   `json:"score_context"` // a 25-shot ARC-style context
	ScoreConts   [][]int32 `json:"score_conts"`   // its four answer choices
	GenPrompt    []int32   `json:"gen_prompt"`
	GenNew       int       `json:"gen_new"`
}

// result is one child's measurement.
type result struct {
	PromptTokS  float64 `json:"prompt_tok_s"`
	ScoreItemsS float64 `json:"score_items_s"`
	GenTokS     float64 `json:"gen_tok_s"`
	LoadS       float64 `json:"load_s"`
	Engine      string  `json:"engine"`
	Checksum    float64 `json:"checksum"` // sum of the item's four log-probabilities: both engines score the same
	rssMB       float64
	err         error
}

func newWorkload(cfg llm.Config, reps, gen int) workload {
	rng := rand.New(rand.NewPCG(Seed, uint64(cfg.Vocab)))
	ids := func(n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(3 + rng.IntN(cfg.Vocab-3)) // no unk/bos/eos
		}
		return out
	}
	w := workload{Context: cfg.Context, Reps: reps, Prompt: ids(500), GenPrompt: ids(16), GenNew: gen}
	// An ARC-Challenge 25-shot prompt: BOS, 25 solved questions of about 36 tokens each, the question asked
	// (about 30), then " A"/" B"... style answers spelled out: choices of 2 to 7 tokens.
	w.ScoreContext = []int32{1}
	for i := 0; i < 25; i++ {
		w.ScoreContext = append(w.ScoreContext, ids(28+rng.IntN(17))...)
	}
	w.ScoreContext = append(w.ScoreContext, ids(30)...)
	for i := 0; i < 4; i++ {
		w.ScoreConts = append(w.ScoreConts, ids(2+rng.IntN(6)))
	}
	return w
}

func runInference(o inferOptions) bool {
	if err := os.MkdirAll(o.models, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench-real:", err)
		return false
	}
	script := filepath.Join(o.npm, "bench-real-llamacpp.mjs") // ES modules resolve packages from the script's folder
	if o.llamacpp {
		if _, err := os.Stat(filepath.Join(o.npm, "node_modules", "node-llama-cpp")); err != nil {
			fmt.Fprintf(os.Stderr, "bench-real: node-llama-cpp is not installed in %s (make llamacpp-npm installs it): %v\n", o.npm, err)
			return false
		}
		if err := os.WriteFile(script, llamacppScript, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench-real:", err)
			return false
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-real:", err)
		return false
	}
	ok := true
	header := true
	for _, s := range o.shapes {
		w := newWorkload(s.cfg, o.reps, o.gen)
		fmt.Printf("# %s: %d-token prompt; scoring item: %d-token context + 4 choices of %s tokens; generation: %d tokens after %d\n",
			s.name, len(w.Prompt), len(w.ScoreContext), contLens(w.ScoreConts), w.GenNew, len(w.GenPrompt))
		for _, tn := range o.types {
			path, err := filepath.Abs(filepath.Join(o.models, fmt.Sprintf("%s-%s-%d.gguf", s.name, tn, Seed)))
			if err == nil {
				err = ensureModel(path, s.cfg, inferTypes[tn])
			}
			if err != nil {
				fmt.Printf("%s %s: cannot write the model: %v\n", s.name, tn, err)
				ok = false
				continue
			}
			for _, th := range o.threads {
				w.Model, w.Threads, w.Device, w.CUDALibrary = path, th, o.device, o.cudaLib
				input := filepath.Join(o.models, fmt.Sprintf("workload-%s-%d.json", s.name, th))
				b, _ := json.Marshal(w)
				if err := os.WriteFile(input, b, 0o644); err != nil {
					fmt.Fprintln(os.Stderr, "bench-real:", err)
					return false
				}
				ours := runChild(exec.Command(self, "engine-child", input))
				ref := result{err: errNoReference}
				if o.llamacpp {
					ref = runChild(exec.Command("node", script, input))
				}
				if header {
					fmt.Printf("%-9s %-5s %-3s %-15s %10s %10s %7s %-9s %s\n", "shape", "type", "thr", "metric", "evomerge", "llama.cpp", "ratio", "target", "")
					if ref.err == nil {
						fmt.Printf("# llama.cpp: %s\n", ref.Engine)
					}
					header = false
				}
				ok = printRows(s.name, tn, th, ours, ref) && ok
			}
		}
	}
	return ok
}

func contLens(c [][]int32) string {
	var parts []string
	for _, x := range c {
		parts = append(parts, strconv.Itoa(len(x)))
	}
	return strings.Join(parts, "/")
}

// ensureModel writes the model unless a file from an earlier run is already there.
func ensureModel(path string, cfg llm.Config, t gguf.Type) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	fmt.Fprintf(os.Stderr, "bench-real: writing %s\n", path)
	_, err := llm.WriteSynthetic(path, cfg, t, Seed)
	return err
}

func runChild(cmd *exec.Cmd) result {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return result{err: fmt.Errorf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, stdout.Bytes(), stderr.Bytes())}
	}
	var r result
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		return result{err: fmt.Errorf("%s printed no result: %v\n%s%s", strings.Join(cmd.Args, " "), err, stdout.Bytes(), stderr.Bytes())}
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rssMB = float64(ru.Maxrss) / 1024 // Linux reports KiB
	}
	return r
}

// errNoReference marks a run without llama.cpp (-llamacpp=false, e.g. on a GPU): the engine's figures alone.
var errNoReference = errors.New("no reference run")

func printRows(shape, typ string, th int, ours, ref result) bool {
	if ours.err == nil && ref.err == errNoReference {
		fmt.Printf("# %s\n", ours.Engine)
		for _, r := range []struct {
			metric string
			v      float64
		}{{"prompt tok/s", ours.PromptTokS}, {"score items/s", ours.ScoreItemsS}, {"gen tok/s", ours.GenTokS}, {"peak RSS MiB", ours.rssMB}} {
			fmt.Printf("%-9s %-5s %-3d %-15s %10.3g %10s\n", shape, typ, th, r.metric, r.v, "-")
		}
		return true
	}
	for _, r := range []result{ours, ref} {
		if r.err != nil {
			fmt.Printf("%-9s %-5s %-3d FAILED: %v\n", shape, typ, th, r.err)
			return false
		}
	}
	row := func(metric string, a, b, target float64) {
		ratio := a / b
		verdict := ""
		tgt := ""
		if target > 0 {
			tgt = fmt.Sprintf(">= %.1fx", target)
			verdict = "met"
			if ratio < target {
				verdict = "NOT met"
			}
		}
		fmt.Printf("%-9s %-5s %-3d %-15s %10.3g %10.3g %6.2fx %-9s %s\n", shape, typ, th, metric, a, b, ratio, tgt, verdict)
	}
	row("prompt tok/s", ours.PromptTokS, ref.PromptTokS, 1.0)
	row("score items/s", ours.ScoreItemsS, ref.ScoreItemsS, 1.0)
	row("gen tok/s", ours.GenTokS, ref.GenTokS, 0.9)
	row("peak RSS MiB", ours.rssMB, ref.rssMB, 0)
	fmt.Printf("%-9s %-5s %-3d %-15s %10.4f %10.4f\n", shape, typ, th, "item log-prob", ours.Checksum, ref.Checksum)
	return true
}
