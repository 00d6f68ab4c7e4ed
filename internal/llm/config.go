// Package llm is a llama-family language model on ggml: its config from GGUF metadata, weights, the forward
// graph (shared by inference and training), continuation scoring, generation with a KV cache, GGUF writing,
// and the byte-level tokenizer the project's tiny models use. Architectures llama (Llama 2/3, Mistral),
// qwen2 (biases on q/k/v) and qwen3 (RMS norm on q and k per head) are read as llama.cpp reads them.
package llm

import (
	"errors"
	"fmt"
	"math"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
)

// Config is the shape of a model.
type Config struct {
	Arch     string  `json:"arch,omitempty"` // "llama" (also ""), "qwen2" or "qwen3"
	Vocab    int     `json:"vocab"`
	Dim      int     `json:"dim"`
	Layers   int     `json:"layers"`
	Heads    int     `json:"heads"`
	KVHeads  int     `json:"kv_heads"`
	FFN      int     `json:"ffn"`
	Context  int     `json:"context"`
	RopeBase float32 `json:"rope_base"`
	NormEps  float32 `json:"norm_eps"`

	// HeadSize is attention.key_length (= value_length) when it is not Dim/Heads (Qwen3); 0: Dim/Heads.
	HeadSize int `json:"head_size,omitempty"`
	// RopeScale is the linear RoPE scaling factor (rope.scaling.factor): positions are divided by it. 0 or
	// 1: none.
	RopeScale float32 `json:"rope_scale,omitempty"`
	// RopeFreqs says the model carries rope_freqs.weight, per-frequency divisors (Llama 3.1/3.2 scaling).
	RopeFreqs bool `json:"rope_freqs,omitempty"`
	// SlidingWindow is attention.sliding_window (Mistral); 0: none. Windows beyond it are refused.
	SlidingWindow int `json:"sliding_window,omitempty"`
}

// archSpec is what differs between the architectures we run.
type archSpec struct {
	qkvBias   bool // attn_q/k/v.bias
	qkNorm    bool // attn_q_norm / attn_k_norm, RMS norm over each head before RoPE
	ropeMode  int
	ropeFreqs bool // llama.cpp applies rope_freqs.weight for this architecture
}

var archs = map[string]archSpec{
	"llama": {ropeMode: ggml.RoPENorm, ropeFreqs: true},
	"qwen2": {qkvBias: true, ropeMode: ggml.RoPENeoX},
	"qwen3": {qkNorm: true, ropeMode: ggml.RoPENeoX},
}

// Architecture is the GGUF general.architecture of the model ("llama" when unset).
func (c Config) Architecture() string {
	if c.Arch == "" {
		return "llama"
	}
	return c.Arch
}

func (c Config) spec() archSpec { return archs[c.Architecture()] }

// HeadDim is the size of one attention head.
func (c Config) HeadDim() int {
	if c.HeadSize > 0 {
		return c.HeadSize
	}
	if c.Heads == 0 {
		return 0
	}
	return c.Dim / c.Heads
}

// rope is the RoPE of this config (every architecture here rotates the whole head).
func (c Config) rope() ggml.RoPEOptions {
	o := ggml.RoPEOptions{Dims: c.HeadDim(), Mode: c.spec().ropeMode, Base: c.RopeBase, FreqScale: 1}
	if c.RopeScale > 0 {
		o.FreqScale = 1 / c.RopeScale
	}
	return o
}

// Validate checks that the numbers describe a model this engine can run.
func (c Config) Validate() error {
	if _, ok := archs[c.Architecture()]; !ok {
		return fmt.Errorf("llm: architecture %q is not supported (llama, qwen2, qwen3)", c.Arch)
	}
	switch {
	case c.Vocab <= 0:
		return fmt.Errorf("llm: vocabulary size %d must be positive", c.Vocab)
	case c.Dim <= 0 || c.Layers <= 0 || c.FFN <= 0:
		return fmt.Errorf("llm: dim %d, layers %d and ffn %d must be positive", c.Dim, c.Layers, c.FFN)
	case c.Heads <= 0 || c.HeadSize < 0 || c.HeadSize == 0 && c.Dim%c.Heads != 0:
		return fmt.Errorf("llm: %d heads do not divide dim %d", c.Heads, c.Dim)
	case c.HeadDim()%2 != 0 || c.HeadDim() == 0:
		return fmt.Errorf("llm: head dim %d must be even for RoPE", c.HeadDim())
	case c.Architecture() == "qwen2" && c.HeadDim()*c.Heads != c.Dim:
		return fmt.Errorf("llm: qwen2 needs heads × head dim (%d × %d) = dim %d", c.Heads, c.HeadDim(), c.Dim)
	case c.KVHeads <= 0 || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("llm: %d kv heads do not divide %d heads", c.KVHeads, c.Heads)
	case c.Context <= 0:
		return fmt.Errorf("llm: context length %d must be positive", c.Context)
	case !(c.NormEps > 0):
		return fmt.Errorf("llm: rms norm epsilon %g must be positive", c.NormEps)
	case !(c.RopeBase > 0) || math.IsInf(float64(c.RopeBase), 0):
		return fmt.Errorf("llm: rope base %g must be positive", c.RopeBase)
	case c.RopeScale < 0 || math.IsNaN(float64(c.RopeScale)) || math.IsInf(float64(c.RopeScale), 0):
		return fmt.Errorf("llm: rope scaling factor %g must be positive", c.RopeScale)
	case c.RopeFreqs && !c.spec().ropeFreqs:
		return fmt.Errorf("llm: architecture %s takes no rope_freqs.weight (llama.cpp would not apply it)", c.Architecture())
	case c.SlidingWindow < 0:
		return fmt.Errorf("llm: sliding window %d must not be negative", c.SlidingWindow)
	case c.Layers > 1024 || c.Dim > 1<<16 || c.Context > 1<<20 || c.HeadSize > 1<<12:
		return errors.New("llm: model dimensions are implausibly large")
	}
	return nil
}

// Parameters is the number of weights of a model of this shape.
func (c Config) Parameters(tiedOutput bool) int64 {
	var n int64
	for _, s := range c.Specs(gguf.TypeF32) {
		if tiedOutput && s.Name == "output.weight" {
			continue
		}
		e := int64(1)
		for _, d := range s.Shape {
			e *= d
		}
		n += e
	}
	return n
}

// configFromGGUF reads a model config from GGUF metadata the way llama.cpp does, refusing what it would run
// differently from llama.cpp.
func configFromGGUF(f *gguf.File) (Config, error) {
	arch, ok := f.String("general.architecture")
	if !ok {
		return Config{}, errors.New("llm: general.architecture is missing")
	}
	if _, ok := archs[arch]; !ok {
		return Config{}, fmt.Errorf("llm: metadata general.architecture: architecture %q is not supported (llama, qwen2, qwen3)", arch)
	}
	p := arch + "."
	need := func(key string) (int, error) {
		v, ok := f.Uint(key)
		if !ok {
			return 0, fmt.Errorf("llm: metadata %s is missing or not an integer", key)
		}
		if v > 1<<31 {
			return 0, fmt.Errorf("llm: metadata %s = %d is out of range", key, v)
		}
		return int(v), nil
	}
	optional := func(key string, dst *int) error {
		if _, ok := f.Lookup(key); !ok {
			return nil
		}
		v, err := need(key)
		if err == nil {
			*dst = v
		}
		return err
	}
	c := Config{Arch: arch}
	if arch == "llama" {
		c.Arch = "" // the zero value, as configs written before other architectures have it
	}
	var err error
	for _, k := range []struct {
		key string
		dst *int
	}{{"embedding_length", &c.Dim}, {"block_count", &c.Layers}, {"attention.head_count", &c.Heads},
		{"feed_forward_length", &c.FFN}, {"context_length", &c.Context}} {
		if *k.dst, err = need(p + k.key); err != nil {
			return c, err
		}
	}
	c.KVHeads = c.Heads
	if err := optional(p+"attention.head_count_kv", &c.KVHeads); err != nil {
		return c, err
	}
	var experts int
	if err := optional(p+"expert_count", &experts); err != nil {
		return c, err
	}
	if experts > 0 {
		return c, fmt.Errorf("llm: metadata %sexpert_count = %d: mixture-of-experts models are not supported", p, experts)
	}
	if c.Heads > 0 {
		kl, vl := 0, 0
		if err := optional(p+"attention.key_length", &kl); err != nil {
			return c, err
		}
		if err := optional(p+"attention.value_length", &vl); err != nil {
			return c, err
		}
		if kl != 0 && vl != 0 && kl != vl {
			return c, fmt.Errorf("llm: metadata %sattention.key_length %d differs from value_length %d (not supported)", p, kl, vl)
		}
		if hd := max(kl, vl); hd != 0 && hd != c.Dim/c.Heads {
			c.HeadSize = hd
		}
	}
	c.RopeBase = 10000
	if v, ok := f.Float(p + "rope.freq_base"); ok {
		c.RopeBase = float32(v)
	}
	c.NormEps = 1e-5
	if v, ok := f.Float(p + "attention.layer_norm_rms_epsilon"); ok {
		c.NormEps = float32(v)
	}
	if _, ok := f.Lookup(p + "rope.dimension_count"); ok {
		rd, err := need(p + "rope.dimension_count")
		if err != nil {
			return c, err
		}
		if rd != c.HeadDim() {
			// llama.cpp refuses this for llama and asserts against it for qwen2/qwen3: no partial RoPE there.
			return c, fmt.Errorf("llm: metadata %srope.dimension_count = %d differs from the head dim %d: llama.cpp runs no partial RoPE for architecture %s", p, rd, c.HeadDim(), arch)
		}
	}
	if err := readRopeScaling(f, p, &c); err != nil {
		return c, err
	}
	if err := optional(p+"attention.sliding_window", &c.SlidingWindow); err != nil {
		return c, err
	}
	if ti, ok := f.Tensor("rope_freqs.weight"); ok {
		if !archs[arch].ropeFreqs {
			return c, fmt.Errorf("llm: tensor rope_freqs.weight: architecture %s does not apply frequency factors in llama.cpp", arch)
		}
		if want := int64(c.HeadDim() / 2); len(ti.Shape) != 1 || ti.Shape[0] != want {
			return c, fmt.Errorf("llm: tensor rope_freqs.weight has shape %v, want [%d]", ti.Shape, want)
		}
		c.RopeFreqs = true
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return c, errors.New("llm: tensor token_embd.weight is missing")
	}
	if len(emb.Shape) != 2 {
		return c, fmt.Errorf("llm: tensor token_embd.weight has shape %v, want [dim, vocab]", emb.Shape)
	}
	c.Vocab = int(emb.Shape[1])
	return c, c.Validate()
}

// readRopeScaling reads rope.scaling.* as llama.cpp does: the type defaults to linear, and the factor (or the
// older rope.scale_linear) divides positions for none and linear alike. YaRN, LongRoPE and anything else are
// refused: their position math is not implemented here.
func readRopeScaling(f *gguf.File, p string, c *Config) error {
	if v, ok := f.Lookup(p + "rope.scaling.type"); ok {
		t, isString := v.(string)
		if !isString {
			return fmt.Errorf("llm: metadata %srope.scaling.type is not a string", p)
		}
		if t != "none" && t != "linear" {
			return fmt.Errorf("llm: metadata %srope.scaling.type = %q is not supported (none and linear are; Llama 3 scaling comes as rope_freqs.weight)", p, t)
		}
	}
	for _, key := range []string{p + "rope.scaling.factor", p + "rope.scale_linear"} {
		if _, ok := f.Lookup(key); !ok {
			continue
		}
		v, ok := f.Float(key)
		if !ok || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("llm: metadata %s must be a non-negative number", key)
		}
		c.RopeScale = float32(v)
		break
	}
	if v, ok := f.Float(p + "rope.scaling.attn_factor"); ok && v != 1 {
		return fmt.Errorf("llm: metadata %srope.scaling.attn_factor = %g is not supported (only 1)", p, v)
	}
	return nil
}

// Metadata returns the <arch>.* keys for c, in a fixed order (the engine's writer and the HF import share it).
func (c Config) Metadata() []gguf.KV {
	p := c.Architecture() + "."
	kvs := []gguf.KV{
		{Key: p + "context_length", Value: uint32(c.Context)},
		{Key: p + "embedding_length", Value: uint32(c.Dim)},
		{Key: p + "block_count", Value: uint32(c.Layers)},
		{Key: p + "feed_forward_length", Value: uint32(c.FFN)},
		{Key: p + "attention.head_count", Value: uint32(c.Heads)},
		{Key: p + "attention.head_count_kv", Value: uint32(c.KVHeads)},
	}
	if c.HeadSize > 0 {
		kvs = append(kvs, gguf.KV{Key: p + "attention.key_length", Value: uint32(c.HeadSize)},
			gguf.KV{Key: p + "attention.value_length", Value: uint32(c.HeadSize)})
	}
	kvs = append(kvs,
		gguf.KV{Key: p + "rope.dimension_count", Value: uint32(c.HeadDim())},
		gguf.KV{Key: p + "rope.freq_base", Value: c.RopeBase})
	if c.RopeScale > 0 && c.RopeScale != 1 {
		kvs = append(kvs, gguf.KV{Key: p + "rope.scaling.type", Value: "linear"},
			gguf.KV{Key: p + "rope.scaling.factor", Value: c.RopeScale})
	}
	if c.SlidingWindow > 0 {
		kvs = append(kvs, gguf.KV{Key: p + "attention.sliding_window", Value: uint32(c.SlidingWindow)})
	}
	return append(kvs,
		gguf.KV{Key: p + "attention.layer_norm_rms_epsilon", Value: c.NormEps},
		gguf.KV{Key: p + "vocab_size", Value: uint32(c.Vocab)})
}
