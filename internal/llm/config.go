// Package llm is a llama-family language model on ggml: its config from GGUF metadata, weights, the forward
// graph (shared by inference and training), continuation scoring, generation with a KV cache, GGUF writing,
// and the byte-level tokenizer the project's tiny models use.
package llm

import (
	"errors"
	"fmt"

	"github.com/evomerge/evomerge/internal/gguf"
)

// Config is the shape of a llama model.
type Config struct {
	Vocab    int     `json:"vocab"`
	Dim      int     `json:"dim"`
	Layers   int     `json:"layers"`
	Heads    int     `json:"heads"`
	KVHeads  int     `json:"kv_heads"`
	FFN      int     `json:"ffn"`
	Context  int     `json:"context"`
	RopeBase float32 `json:"rope_base"`
	NormEps  float32 `json:"norm_eps"`
}

// HeadDim is the size of one attention head.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// Validate checks that the numbers describe a model this engine can run.
func (c Config) Validate() error {
	switch {
	case c.Vocab <= 0:
		return fmt.Errorf("llm: vocabulary size %d must be positive", c.Vocab)
	case c.Dim <= 0 || c.Layers <= 0 || c.FFN <= 0:
		return fmt.Errorf("llm: dim %d, layers %d and ffn %d must be positive", c.Dim, c.Layers, c.FFN)
	case c.Heads <= 0 || c.Dim%c.Heads != 0:
		return fmt.Errorf("llm: %d heads do not divide dim %d", c.Heads, c.Dim)
	case c.HeadDim()%2 != 0:
		return fmt.Errorf("llm: head dim %d must be even for RoPE", c.HeadDim())
	case c.KVHeads <= 0 || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("llm: %d kv heads do not divide %d heads", c.KVHeads, c.Heads)
	case c.Context <= 0:
		return fmt.Errorf("llm: context length %d must be positive", c.Context)
	case c.NormEps <= 0:
		return fmt.Errorf("llm: rms norm epsilon %g must be positive", c.NormEps)
	case c.RopeBase <= 0:
		return fmt.Errorf("llm: rope base %g must be positive", c.RopeBase)
	case c.Layers > 1024 || c.Dim > 1<<16 || c.Context > 1<<20:
		return errors.New("llm: model dimensions are implausibly large")
	}
	return nil
}

// Parameters is the number of weights of a model of this shape.
func (c Config) Parameters(tiedOutput bool) int64 {
	hd := int64(c.HeadDim())
	d, f, v := int64(c.Dim), int64(c.FFN), int64(c.Vocab)
	perLayer := 2*d + d*int64(c.Heads)*hd + 2*d*int64(c.KVHeads)*hd + int64(c.Heads)*hd*d + 3*d*f
	n := v*d + d + int64(c.Layers)*perLayer
	if !tiedOutput {
		n += v * d
	}
	return n
}

// configFromGGUF reads a llama config from GGUF metadata.
func configFromGGUF(f *gguf.File) (Config, error) {
	arch, ok := f.String("general.architecture")
	if !ok {
		return Config{}, errors.New("llm: general.architecture is missing")
	}
	if arch != "llama" {
		return Config{}, fmt.Errorf("llm: architecture %q is not supported (only llama: Llama, Mistral and their fine-tunes)", arch)
	}
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
	var c Config
	var err error
	if c.Dim, err = need("llama.embedding_length"); err != nil {
		return c, err
	}
	if c.Layers, err = need("llama.block_count"); err != nil {
		return c, err
	}
	if c.Heads, err = need("llama.attention.head_count"); err != nil {
		return c, err
	}
	if c.FFN, err = need("llama.feed_forward_length"); err != nil {
		return c, err
	}
	if c.Context, err = need("llama.context_length"); err != nil {
		return c, err
	}
	c.KVHeads = c.Heads
	if _, ok := f.Lookup("llama.attention.head_count_kv"); ok {
		if c.KVHeads, err = need("llama.attention.head_count_kv"); err != nil {
			return c, err
		}
	}
	c.RopeBase = 10000
	if v, ok := f.Float("llama.rope.freq_base"); ok {
		c.RopeBase = float32(v)
	}
	c.NormEps = 1e-5
	if v, ok := f.Float("llama.attention.layer_norm_rms_epsilon"); ok {
		c.NormEps = float32(v)
	}
	if rd, ok := f.Uint("llama.rope.dimension_count"); ok && c.Heads > 0 && rd != uint64(c.Dim/c.Heads) {
		return c, fmt.Errorf("llm: llama.rope.dimension_count %d differs from the head dim %d (partial RoPE is not supported)", rd, c.Dim/c.Heads)
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

// metadata returns the llama.* keys for c, in a fixed order.
func (c Config) metadata() []gguf.KV {
	return []gguf.KV{
		{Key: "llama.context_length", Value: uint32(c.Context)},
		{Key: "llama.embedding_length", Value: uint32(c.Dim)},
		{Key: "llama.block_count", Value: uint32(c.Layers)},
		{Key: "llama.feed_forward_length", Value: uint32(c.FFN)},
		{Key: "llama.attention.head_count", Value: uint32(c.Heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(c.KVHeads)},
		{Key: "llama.rope.dimension_count", Value: uint32(c.HeadDim())},
		{Key: "llama.rope.freq_base", Value: c.RopeBase},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: c.NormEps},
		{Key: "llama.vocab_size", Value: uint32(c.Vocab)},
	}
}
