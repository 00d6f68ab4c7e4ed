// Package refcheck holds the models and measurements of the comparison with real llama.cpp: tiny models of
// every architecture and RoPE variant the engine runs, generated deterministically from one seed and written as
// GGUF the way the project writes models; the token ids they are evaluated on; and the golden llama.cpp
// outputs (testdata/llamacpp-golden.json) that `make check-llamacpp` produced, so that `go test` compares the
// engine with llama.cpp without installing it.
package refcheck

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
)

// Seed drives every random choice of the check: weights and prompt ids.
const Seed = 20261201

// The evaluation: logits at every position of a PromptLen-token prompt, and a greedy continuation of
// GreedyNew tokens after its first GreedyPrompt tokens.
const (
	PromptLen    = 24
	GreedyPrompt = 8
	GreedyNew    = 16
)

// GoldenPositions are the positions whose logits the golden file keeps (all positions are compared live).
var GoldenPositions = []int{0, 1, 6, 13, 19, 23}

// goldenFixedIDs are token ids whose logits the golden file keeps at every kept position, beside the top ones.
var goldenFixedIDs = []int32{0, 1, 2, 10, 32, 65, 101, 127, 200, 255, 256, 257}

// GoldenTop is how many of llama.cpp's highest logits per kept position the golden file keeps.
const GoldenTop = 8

// Variant is one model of the check: a shape (architecture, RoPE variant) in one weight type.
type Variant struct {
	Shape  string // name of the shape: "llama-gqa", "qwen2", ...
	Config llm.Config
	Type   gguf.Type
}

// Name is the variant's name, e.g. "qwen2-Q8_0".
func (v Variant) Name() string { return v.Shape + "-" + ggml.TypeName(ggml.Type(v.Type)) }

// Shapes are the model shapes compared, each with the feature it tests.
func Shapes() []Variant {
	base := llm.Config{Vocab: llm.ByteVocabLen, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 128, Context: 64,
		RopeBase: 10000, NormEps: 1e-5}
	with := func(shape string, f func(*llm.Config)) Variant {
		c := base
		f(&c)
		return Variant{Shape: shape, Config: c}
	}
	return []Variant{
		with("llama-gqa", func(*llm.Config) {}),
		with("llama-rope-freqs", func(c *llm.Config) { c.RopeFreqs = true }),
		with("llama-linear4", func(c *llm.Config) { c.RopeScale = 4 }),
		with("mistral-swa32", func(c *llm.Config) { c.SlidingWindow = 32 }),
		with("qwen2", func(c *llm.Config) { c.Arch = "qwen2"; c.RopeBase = 1e6; c.NormEps = 1e-6 }),
		with("qwen2-linear2", func(c *llm.Config) { c.Arch = "qwen2"; c.RopeScale = 2 }),
		with("qwen3", func(c *llm.Config) { c.Arch = "qwen3"; c.HeadSize = 32; c.RopeBase = 1e6; c.NormEps = 1e-6 }),
	}
}

// Variants are the shapes in F32, F16 and Q8_0.
func Variants() []Variant {
	var out []Variant
	for _, s := range Shapes() {
		for _, t := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0} {
			s.Type = t
			out = append(out, s)
		}
	}
	return out
}

// Prompt is the token ids every model is evaluated on.
func Prompt() []int32 {
	rng := rand.New(rand.NewPCG(Seed, 1))
	ids := make([]int32, PromptLen)
	for i := range ids {
		ids[i] = int32(rng.IntN(llm.ByteVocabLen))
	}
	return ids
}

// Build makes the variant's model. Weights are large enough that attention and logits are far from uniform
// (a wrong rotation or bias changes them visibly); they depend on the shape only, so the F16 and Q8_0 models
// are conversions of the F32 one.
func Build(v Variant) (*llm.Model, error) {
	h := fnv.New64a()
	h.Write([]byte(v.Shape))
	rng := rand.New(rand.NewPCG(Seed, h.Sum64()))
	specs := v.Config.Specs(v.Type)
	data := map[string][]byte{}
	for _, s := range specs {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		vals := make([]float32, n)
		switch {
		case s.Name == "rope_freqs.weight":
			copy(vals, Llama3RopeFreqs(v.Config.HeadDim(), v.Config.RopeBase, 8, 1, 4, v.Config.Context))
		case strings.HasSuffix(s.Name, ".bias"):
			for i := range vals {
				vals[i] = float32(rng.NormFloat64() * 0.5)
			}
		case len(s.Shape) == 1:
			for i := range vals {
				vals[i] = 1 + float32(rng.NormFloat64()*0.2)
			}
		default:
			for i := range vals {
				vals[i] = float32(rng.NormFloat64() * 0.3)
			}
		}
		b := make([]byte, ggml.RowSize(ggml.Type(s.Type), n))
		if err := ggml.FromFloat32(ggml.Type(s.Type), vals, b, s.Shape[0]); err != nil {
			return nil, fmt.Errorf("refcheck: %s: %w", s.Name, err)
		}
		data[s.Name] = b
	}
	meta := []gguf.KV{{Key: "general.name", Value: "evomerge-refcheck-" + v.Name()}}
	return llm.FromHost(v.Config, llm.ByteTokenizer{}, meta, specs, data, llm.Options{Threads: 1})
}

// Llama3RopeFreqs are the frequency divisors of Llama 3.1's RoPE scaling (what convert_hf_to_gguf.py writes
// as rope_freqs.weight): high frequencies kept, low ones divided by factor, a smooth blend between.
func Llama3RopeFreqs(headDim int, base float32, factor, lowFreqFactor, highFreqFactor float64, origContext int) []float32 {
	lowWavelen := float64(origContext) / lowFreqFactor
	highWavelen := float64(origContext) / highFreqFactor
	out := make([]float32, headDim/2)
	for i := range out {
		freq := math.Pow(float64(base), -float64(2*i)/float64(headDim))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = float32(factor)
		default:
			smooth := (float64(origContext)/wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/factor + smooth))
		}
	}
	return out
}

// Measure runs the engine on the check's inputs: logits at every prompt position (the plain path) and the
// greedy continuation (through the KV cache).
func Measure(m *llm.Model) (logits [][]float32, greedy []int32, err error) {
	p := Prompt()
	if logits, err = m.Logits(p); err != nil {
		return nil, nil, err
	}
	greedy, err = m.GreedyTokens(p[:GreedyPrompt], GreedyNew)
	return logits, greedy, err
}

// Golden is what llama.cpp computed for the check, as kept in testdata.
type Golden struct {
	LlamaCpp string        `json:"llama_cpp"` // the llama.cpp build compared with
	Models   []GoldenModel `json:"models"`
}

// GoldenModel is llama.cpp's output for one variant.
type GoldenModel struct {
	Name   string      `json:"name"`
	SHA256 string      `json:"sha256"` // of the GGUF the variant's Build writes: the golden is for exactly it
	Argmax []int32     `json:"argmax"` // at every prompt position
	Greedy []int32     `json:"greedy"`
	Rows   []GoldenRow `json:"rows"`
}

// GoldenRow is a sample of llama.cpp's logits at one position.
type GoldenRow struct {
	Pos    int       `json:"pos"`
	IDs    []int32   `json:"ids"`
	Logits []float32 `json:"logits"`
}

// NewGoldenModel keeps a sample of llama.cpp's full logits (the top GoldenTop and fixed ids at GoldenPositions).
func NewGoldenModel(name, sha string, logits [][]float32, greedy []int32) GoldenModel {
	g := GoldenModel{Name: name, SHA256: sha, Greedy: greedy}
	for _, row := range logits {
		g.Argmax = append(g.Argmax, Argmax(row))
	}
	for _, p := range GoldenPositions {
		row := logits[p]
		ids := topIDs(row, GoldenTop)
		for _, id := range goldenFixedIDs {
			if !containsID(ids, id) && int(id) < len(row) {
				ids = append(ids, id)
			}
		}
		r := GoldenRow{Pos: p, IDs: ids}
		for _, id := range ids {
			r.Logits = append(r.Logits, row[id])
		}
		g.Rows = append(g.Rows, r)
	}
	return g
}

// ReadGolden reads a golden file.
func ReadGolden(path string) (*Golden, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var g Golden
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &g, nil
}

// Argmax is the index of the largest value (the first on ties).
func Argmax(row []float32) int32 {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return int32(best)
}

func topIDs(row []float32, k int) []int32 {
	var ids []int32
	used := make([]bool, len(row))
	for len(ids) < k && len(ids) < len(row) {
		best := -1
		for i, v := range row {
			if !used[i] && (best < 0 || v > row[best]) {
				best = i
			}
		}
		used[best] = true
		ids = append(ids, int32(best))
	}
	return ids
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Tolerance is the largest |logit difference| from llama.cpp accepted for weights of type t. F32 is the
// issue's bound. F16 and Q8_0 models also round activations to F16 / Q8_0 in both engines, and a difference
// of 1e-6 upstream can flip one such rounding: mostly the two agree bit for bit, the worst seen was 5e-3.
func Tolerance(t gguf.Type) float64 {
	if t == gguf.TypeF32 {
		return 1e-4
	}
	return 1e-2
}
