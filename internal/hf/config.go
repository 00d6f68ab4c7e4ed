package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/evomerge/evomerge/internal/jsonpos"
	"github.com/evomerge/evomerge/internal/llm"
)

// Config is what this package reads of a config.json. Pointers are keys that may be absent (or null).
type Config struct {
	Architectures         []string        `json:"architectures"`
	ModelType             string          `json:"model_type"`
	NameOrPath            string          `json:"_name_or_path"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	VocabSize             int             `json:"vocab_size"`
	SlidingWindow         *int            `json:"sliding_window"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`
	HiddenAct             string          `json:"hidden_act"`
	TorchDtype            string          `json:"torch_dtype"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               *bool           `json:"mlp_bias"`
	BOSTokenID            json.RawMessage `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
	PadTokenID            json.RawMessage `json:"pad_token_id"`
	NumExperts            *int            `json:"num_experts"`
	NumLocalExperts       *int            `json:"num_local_experts"`
}

// archOf maps config.json's architectures to the GGUF architecture and whether Q/K rows are permuted
// (llama's GGUF RoPE is interleaved; Qwen's is NeoX, as in the Hugging Face weights).
var archOf = map[string]struct {
	gguf    string
	permute bool
}{
	"LlamaForCausalLM":   {"llama", true},
	"MistralForCausalLM": {"llama", true},
	"Qwen2ForCausalLM":   {"qwen2", false},
	"Qwen3ForCausalLM":   {"qwen3", false},
}

// hfArchOf is the inverse for Export (one Hugging Face class per GGUF architecture).
var hfArchOf = map[string]struct{ class, modelType string }{
	"llama": {"LlamaForCausalLM", "llama"},
	"qwen2": {"Qwen2ForCausalLM", "qwen2"},
	"qwen3": {"Qwen3ForCausalLM", "qwen3"},
}

// SupportedArchitectures lists the config.json architectures Import converts.
func SupportedArchitectures() []string {
	out := make([]string, 0, len(archOf))
	for a := range archOf {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// UnsupportedError is an architecture the engine does not run.
type UnsupportedError struct {
	Folder        string
	Architectures []string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("hf: model %s: %s key architectures = %q: the engine runs %s only", e.Folder, ConfigName,
		e.Architectures, strings.Join(SupportedArchitectures(), ", "))
}

// ParseConfig decodes config.json. name is used in error messages (the file's path).
func ParseConfig(data []byte, name string) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return nil, jsonError(name, data, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("hf: %s: data after the JSON object", name)
	}
	return &c, nil
}

// jsonError names the line and column of a decoding error in data, and the key it is about when
// encoding/json knows it.
func jsonError(name string, data []byte, err error) error {
	if line, col, ok := jsonpos.Locate(data, err); ok {
		name = fmt.Sprintf("%s:%d:%d", name, line, col)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("hf: %s: key %s: %s is not a %s", name, te.Field, te.Value, te.Type)
	}
	return fmt.Errorf("hf: %s: %v", name, err)
}

// plan is a config.json turned into the engine's config plus what the conversion needs.
type plan struct {
	cfg       llm.Config
	permute   bool
	tied      bool
	ropeFreqs []float32 // Llama 3 rope scaling factors, written as rope_freqs.weight
	hfArch    string
}

// modelPlan checks a config.json against what the engine runs. folder and file name the source in errors.
func (c *Config) modelPlan(folder, file string) (*plan, error) {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("hf: model %s: %s key %s: %s", folder, file, key, fmt.Sprintf(format, args...))
	}
	if len(c.Architectures) != 1 {
		return nil, &UnsupportedError{Folder: folder, Architectures: c.Architectures}
	}
	a, ok := archOf[c.Architectures[0]]
	if !ok {
		return nil, &UnsupportedError{Folder: folder, Architectures: c.Architectures}
	}
	p := &plan{permute: a.permute, hfArch: c.Architectures[0]}
	cfg := llm.Config{Arch: a.gguf, Vocab: c.VocabSize, Dim: c.HiddenSize, Layers: c.NumHiddenLayers,
		Heads: c.NumAttentionHeads, FFN: c.IntermediateSize, Context: c.MaxPositionEmbeddings}
	if cfg.Arch == "llama" {
		cfg.Arch = ""
	}
	for _, k := range []struct {
		key string
		v   int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads}, {"intermediate_size", c.IntermediateSize}} {
		if k.v <= 0 {
			return nil, bad(k.key, "must be a positive integer, got %d", k.v)
		}
	}
	if cfg.Context <= 0 {
		cfg.Context = 2048 // transformers' LlamaConfig default
	}
	cfg.KVHeads = cfg.Heads
	if c.NumKeyValueHeads != nil {
		cfg.KVHeads = *c.NumKeyValueHeads
	}
	if c.HeadDim != nil && *c.HeadDim != 0 && (cfg.Heads == 0 || *c.HeadDim != cfg.Dim/cfg.Heads || cfg.Dim%cfg.Heads != 0) {
		if *c.HeadDim < 0 {
			return nil, bad("head_dim", "must be positive, got %d", *c.HeadDim)
		}
		cfg.HeadSize = *c.HeadDim
	}
	cfg.NormEps = 1e-6
	if c.RMSNormEps != nil {
		cfg.NormEps = float32(*c.RMSNormEps)
	}
	cfg.RopeBase = 10000
	if c.RopeTheta != nil {
		cfg.RopeBase = float32(*c.RopeTheta)
	}
	if c.HiddenAct != "" && c.HiddenAct != "silu" {
		return nil, bad("hidden_act", "%q is not supported (the engine's feed-forward is SwiGLU: silu)", c.HiddenAct)
	}
	if n := c.NumExperts; n != nil && *n > 1 {
		return nil, bad("num_experts", "%d: mixture-of-experts models are not supported", *n)
	}
	if n := c.NumLocalExperts; n != nil && *n > 1 {
		return nil, bad("num_local_experts", "%d: mixture-of-experts models are not supported", *n)
	}
	wantBias := cfg.Arch == "qwen2" // Qwen2 always has q/k/v biases; the others never do here
	if c.AttentionBias != nil && *c.AttentionBias != wantBias {
		return nil, bad("attention_bias", "%v is not supported for %s", *c.AttentionBias, p.hfArch)
	}
	if c.MLPBias != nil && *c.MLPBias {
		return nil, bad("mlp_bias", "true is not supported (the engine's feed-forward has no biases)")
	}
	switch {
	case c.SlidingWindow == nil || *c.SlidingWindow <= 0:
	case cfg.Arch == "":
		// Mistral: the engine keeps every sequence inside the window, which is exact attention.
		if *c.SlidingWindow < cfg.Context {
			cfg.SlidingWindow = *c.SlidingWindow
		}
	case c.UseSlidingWindow != nil && *c.UseSlidingWindow:
		return nil, bad("use_sliding_window", "true: sliding-window attention is not implemented for %s", p.hfArch)
	}
	p.tied = c.TieWordEmbeddings != nil && *c.TieWordEmbeddings
	if err := c.ropeScaling(&cfg, p, bad); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hf: model %s: %s: %v", folder, file, err)
	}
	if cfg.Vocab > 1<<22 {
		return nil, bad("vocab_size", "%d is implausibly large", cfg.Vocab)
	}
	p.cfg = cfg
	return p, nil
}

// ropeScaling reads rope_scaling: none/default, linear (positions divided by the factor) and llama3
// (per-frequency factors, computed as llama.cpp's converter does and stored as rope_freqs.weight).
func (c *Config) ropeScaling(cfg *llm.Config, p *plan, bad func(key, format string, args ...any) error) error {
	if len(c.RopeScaling) == 0 || string(c.RopeScaling) == "null" {
		return nil
	}
	var rs struct {
		Type            string   `json:"type"`
		RopeType        string   `json:"rope_type"`
		Factor          *float64 `json:"factor"`
		LowFreqFactor   *float64 `json:"low_freq_factor"`
		HighFreqFactor  *float64 `json:"high_freq_factor"`
		OriginalContext *float64 `json:"original_max_position_embeddings"`
	}
	if err := json.Unmarshal(c.RopeScaling, &rs); err != nil {
		return bad("rope_scaling", "not an object of the expected fields: %v", err)
	}
	typ := rs.RopeType
	if typ == "" {
		typ = rs.Type
	}
	factor := 1.0
	if rs.Factor != nil {
		factor = *rs.Factor
	}
	if !(factor > 0) || math.IsInf(factor, 0) {
		return bad("rope_scaling.factor", "must be a positive number, got %v", factor)
	}
	switch typ {
	case "", "default":
		return nil
	case "linear":
		if factor != 1 {
			cfg.RopeScale = float32(factor)
		}
		return nil
	case "llama3":
		if cfg.Arch != "" {
			return bad("rope_scaling.rope_type", "llama3 scaling is only read for llama models")
		}
		low, high, orig := 1.0, 4.0, 8192.0
		if rs.LowFreqFactor != nil {
			low = *rs.LowFreqFactor
		}
		if rs.HighFreqFactor != nil {
			high = *rs.HighFreqFactor
		}
		if rs.OriginalContext != nil {
			orig = *rs.OriginalContext
		}
		if !(low > 0) || !(high > low) || !(orig > 0) || math.IsInf(high, 0) || math.IsInf(orig, 0) {
			return bad("rope_scaling", "llama3 needs 0 < low_freq_factor < high_freq_factor and a positive original_max_position_embeddings")
		}
		hd := cfg.HeadDim()
		if hd <= 0 || hd%2 != 0 || hd > 1<<12 {
			return bad("head_dim", "head dimension %d is not usable for RoPE", hd)
		}
		lowWave, highWave := orig/low, orig/high
		for i := 0; i < hd; i += 2 {
			freq := 1 / math.Pow(float64(cfg.RopeBase), float64(i)/float64(hd))
			wave := 2 * math.Pi / freq
			switch {
			case wave < highWave:
				p.ropeFreqs = append(p.ropeFreqs, 1)
			case wave > lowWave:
				p.ropeFreqs = append(p.ropeFreqs, float32(factor))
			default:
				smooth := (orig/wave - low) / (high - low)
				p.ropeFreqs = append(p.ropeFreqs, float32(1/((1-smooth)/factor+smooth)))
			}
		}
		cfg.RopeFreqs = true
		return nil
	}
	return bad("rope_scaling.rope_type", "%q is not supported (default, linear and llama3 are)", typ)
}

// tokenIDs reads a token id key that may be an integer or a list of integers (eos_token_id).
func tokenIDs(raw json.RawMessage) []int {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return []int{one}
	}
	var many []int
	if json.Unmarshal(raw, &many) == nil && len(many) <= 64 {
		return many
	}
	return nil
}

// RunsGGUFArchitecture reports whether the engine runs models of a GGUF general.architecture (the
// architectures Import writes and Export reads).
func RunsGGUFArchitecture(arch string) bool {
	_, ok := hfArchOf[arch]
	return ok
}

// GGUFArchitectures lists the GGUF architectures the engine runs.
func GGUFArchitectures() []string {
	out := make([]string, 0, len(hfArchOf))
	for a := range hfArchOf {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
