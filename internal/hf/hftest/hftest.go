// Package hftest writes small Hugging Face model folders for tests: config.json, safetensors weights drawn
// from a seeded PRNG (one file or shards with an index), a byte-level BPE tokenizer.json with merges and
// special tokens, tokenizer_config.json with a chat template, and generation_config.json. The folders have
// the layout and key names of the Hub's llama / mistral / qwen2 / qwen3 checkpoints, at toy size.
package hftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/evomerge/evomerge/internal/safetensors"
)

// Options shape a folder. Zero fields take the defaults of Default.
type Options struct {
	Architecture string // config.json architectures[0]
	DType        safetensors.DType
	Layers       int
	Dim          int
	Heads        int
	KVHeads      int
	HeadDim      int // 0: Dim/Heads (config.json says nothing)
	FFN          int
	Context      int
	Vocab        int // config.json vocab_size; at least the tokenizer's size (extra rows are padding)
	Tied         bool
	Shards       int    // 0 or 1: model.safetensors; more: model-0000i-of-0000n.safetensors + index
	RopeScaling  string // JSON of config.json's rope_scaling ("" : null)
	Seed         uint64
	Std          float64 // weight scale (default 0.2)
	// NoChatTemplate leaves chat_template out of tokenizer_config.json.
	NoChatTemplate bool
}

// Default is a 2-layer GQA llama.
func Default() Options {
	return Options{Architecture: "LlamaForCausalLM", DType: safetensors.F32, Layers: 2, Dim: 32, Heads: 4, KVHeads: 2,
		FFN: 48, Context: 256, Vocab: 300, Seed: 1, Std: 0.2}
}

// ChatTemplate is the folder's chat template (a Jinja template of the shape real ones have).
const ChatTemplate = "{{ bos_token }}{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|start|>assistant\n{% endif %}"

// Specials are the added tokens of the tokenizer, in id order after the byte-level pieces and merges.
var Specials = []string{"<|begin_of_text|>", "<|end_of_text|>", "<|start|>", "<|end|>"}

// Merges are the tokenizer's merges: English pieces, so ordinary text becomes fewer tokens than bytes.
var Merges = [][2]string{{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"Ġ", "a"}, {"i", "n"}, {"e", "r"}, {"o", "n"},
	{"Ġ", "s"}, {"r", "e"}, {"a", "t"}, {"Ġ", "w"}, {"Ġ", "c"}, {"e", "n"}, {"o", "r"}, {"Ġ", "b"}, {"i", "s"},
	{"Ġ", "o"}, {"a", "n"}, {"Ġ", "1"}, {"Ġ", "2"}, {"Ġa", "n"}, {"Ġan", "d"}, {"Ġ", "f"}, {"e", "s"}}

// ByteText is GPT-2's byte-to-character table of byte-level BPE.
func ByteText() [256]string {
	var out [256]string
	n := 0
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			out[b] = string(rune(b))
		} else {
			out[b] = string(rune(256 + n))
			n++
		}
	}
	return out
}

// TokenizerSize is the number of tokens the tokenizer defines.
func TokenizerSize() int { return 256 + len(Merges) + len(Specials) }

// Write creates the folder dir.
func Write(dir string, o Options) error {
	d := Default()
	if o.Architecture == "" {
		o.Architecture = d.Architecture
	}
	if o.DType == "" {
		o.DType = d.DType
	}
	for _, f := range []struct {
		dst *int
		def int
	}{{&o.Layers, d.Layers}, {&o.Dim, d.Dim}, {&o.Heads, d.Heads},
		{&o.KVHeads, d.KVHeads}, {&o.FFN, d.FFN}, {&o.Context, d.Context}, {&o.Vocab, d.Vocab}} {
		if *f.dst == 0 {
			*f.dst = f.def
		}
	}
	if o.Std == 0 {
		o.Std = d.Std
	}
	if o.Vocab < TokenizerSize() {
		return fmt.Errorf("hftest: vocab %d is below the tokenizer's %d tokens", o.Vocab, TokenizerSize())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hd := o.HeadDim
	if hd == 0 {
		hd = o.Dim / o.Heads
	}
	modelType := map[string]string{"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
		"Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}[o.Architecture]
	torchDtype := map[safetensors.DType]string{safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16"}[o.DType]
	bos, eos := 256+len(Merges), 256+len(Merges)+1
	cfg := map[string]any{
		"architectures": []string{o.Architecture}, "model_type": modelType, "hidden_size": o.Dim,
		"intermediate_size": o.FFN, "num_hidden_layers": o.Layers, "num_attention_heads": o.Heads,
		"num_key_value_heads": o.KVHeads, "max_position_embeddings": o.Context, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "tie_word_embeddings": o.Tied, "vocab_size": o.Vocab, "hidden_act": "silu",
		"torch_dtype": torchDtype, "bos_token_id": bos, "eos_token_id": eos, "rope_scaling": nil,
	}
	if o.HeadDim != 0 {
		cfg["head_dim"] = o.HeadDim
	}
	if o.RopeScaling != "" {
		cfg["rope_scaling"] = json.RawMessage(o.RopeScaling)
	}
	if o.Architecture == "Qwen2ForCausalLM" || o.Architecture == "Qwen3ForCausalLM" {
		cfg["use_sliding_window"] = false
		cfg["sliding_window"] = 4096
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "generation_config.json"), map[string]any{"bos_token_id": bos, "eos_token_id": eos}); err != nil {
		return err
	}
	if err := writeTokenizer(dir, !o.NoChatTemplate); err != nil {
		return err
	}
	return writeWeights(dir, o, hd)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writeTokenizer(dir string, chat bool) error {
	bt := ByteText()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[bt[b]] = b
	}
	var merges []string
	for i, m := range Merges {
		vocab[m[0]+m[1]] = 256 + i
		merges = append(merges, m[0]+" "+m[1])
	}
	var added []map[string]any
	decoder := map[string]any{}
	for i, s := range Specials {
		id := 256 + len(Merges) + i
		added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
		decoder[fmt.Sprint(id)] = map[string]any{"content": s, "special": true}
	}
	tj := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added, "normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}}},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": Specials[0], "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{Specials[0]: map[string]any{"id": Specials[0], "ids": []int{256 + len(Merges)}, "tokens": []string{Specials[0]}}}},
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "fuse_unk": false, "byte_fallback": false,
			"ignore_merges": true, "vocab": vocab, "merges": merges},
	}
	if err := writeJSON(filepath.Join(dir, "tokenizer.json"), tj); err != nil {
		return err
	}
	tc := map[string]any{"add_bos_token": true, "add_eos_token": false, "bos_token": Specials[0], "eos_token": Specials[1],
		"chat_template": ChatTemplate, "added_tokens_decoder": decoder, "model_max_length": 256,
		"tokenizer_class": "PreTrainedTokenizerFast"}
	if !chat {
		delete(tc, "chat_template")
	}
	return writeJSON(filepath.Join(dir, "tokenizer_config.json"), tc)
}

type tensor struct {
	name  string
	shape []int64
}

func writeWeights(dir string, o Options, hd int) error {
	q, kv := int64(o.Heads*hd), int64(o.KVHeads*hd)
	d, f, v := int64(o.Dim), int64(o.FFN), int64(o.Vocab)
	ts := []tensor{{"model.embed_tokens.weight", []int64{v, d}}}
	for i := 0; i < o.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts, tensor{p + "input_layernorm.weight", []int64{d}},
			tensor{p + "self_attn.q_proj.weight", []int64{q, d}}, tensor{p + "self_attn.k_proj.weight", []int64{kv, d}},
			tensor{p + "self_attn.v_proj.weight", []int64{kv, d}})
		if o.Architecture == "Qwen2ForCausalLM" {
			ts = append(ts, tensor{p + "self_attn.q_proj.bias", []int64{q}}, tensor{p + "self_attn.k_proj.bias", []int64{kv}},
				tensor{p + "self_attn.v_proj.bias", []int64{kv}})
		}
		if o.Architecture == "Qwen3ForCausalLM" {
			ts = append(ts, tensor{p + "self_attn.q_norm.weight", []int64{int64(hd)}}, tensor{p + "self_attn.k_norm.weight", []int64{int64(hd)}})
		}
		ts = append(ts, tensor{p + "self_attn.o_proj.weight", []int64{d, q}},
			tensor{p + "post_attention_layernorm.weight", []int64{d}},
			tensor{p + "mlp.gate_proj.weight", []int64{f, d}}, tensor{p + "mlp.up_proj.weight", []int64{f, d}},
			tensor{p + "mlp.down_proj.weight", []int64{d, f}})
	}
	ts = append(ts, tensor{"model.norm.weight", []int64{d}})
	if !o.Tied {
		ts = append(ts, tensor{"lm_head.weight", []int64{v, d}})
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	data := map[string][]float32{}
	var infos []safetensors.TensorInfo
	for _, t := range ts {
		n := int64(1)
		for _, x := range t.shape {
			n *= x
		}
		vals := make([]float32, n)
		for i := range vals {
			switch {
			case strings.HasSuffix(t.name, "norm.weight"):
				vals[i] = float32(1 + 0.2*rng.NormFloat64())
			case strings.HasSuffix(t.name, ".bias"):
				vals[i] = float32(0.3 * rng.NormFloat64())
			default:
				vals[i] = float32(o.Std * rng.NormFloat64())
			}
		}
		data[t.name] = vals
		infos = append(infos, safetensors.TensorInfo{Name: t.name, DType: o.DType, Shape: t.shape})
	}
	shards := [][]safetensors.TensorInfo{infos}
	if o.Shards > 1 {
		per := (len(infos) + o.Shards - 1) / o.Shards
		shards = nil
		for i := 0; i < len(infos); i += per {
			shards = append(shards, infos[i:min(i+per, len(infos))])
		}
	}
	for i, s := range shards {
		name := "model.safetensors"
		if len(shards) > 1 {
			name = safetensors.ShardName(i, len(shards))
		}
		var buf bytes.Buffer
		w, err := safetensors.NewWriter(&buf, map[string]string{"format": "pt"}, s)
		if err != nil {
			return err
		}
		for _, t := range s {
			es, _ := t.DType.Size()
			raw := make([]byte, int64(len(data[t.Name]))*es)
			if err := safetensors.Encode(t.DType, data[t.Name], raw); err != nil {
				return err
			}
			if err := w.WriteTensor(t.Name, raw); err != nil {
				return err
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if len(shards) > 1 {
		idx, err := safetensors.IndexJSON(shards)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, safetensors.IndexName), idx, 0o644)
	}
	return nil
}

// EditConfig rewrites the config.json of the folder dir through edit, for tests
// of folders whose config is wrong in one key.
func EditConfig(dir string, edit func(map[string]any)) error {
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	edit(c)
	if b, err = json.Marshal(c); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}
