package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/evomerge/evomerge/internal/atomicfile"
	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/safetensors"
	"github.com/evomerge/evomerge/internal/tokenizer"
)

// ropeScalingKey keeps config.json's rope_scaling in the GGUF when it cannot be recomputed from the GGUF
// keys (Llama 3's factors are stored as rope_freqs.weight), so Export can write it back.
const ropeScalingKey = "hf.rope_scaling"

// Export writes the GGUF model at ggufPath as a Hugging Face folder dir: config.json, model.safetensors,
// tokenizer.json (and tokenizer.model for SentencePiece vocabularies), tokenizer_config.json with the chat
// template, and generation_config.json. The folder is assembled beside dir and renamed into place, so dir
// holds either the previous export or the complete new one.
func Export(ggufPath, dir string) error {
	f, file, err := gguf.Open(ggufPath)
	if err != nil {
		return fmt.Errorf("hf: export: %w", err)
	}
	defer file.Close()
	files, err := exportFiles(f, file, ggufPath)
	if err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("hf: export: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("hf: export: %w", err)
	}
	defer os.RemoveAll(tmp)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := atomicfile.Write(filepath.Join(tmp, n), files[n]); err != nil {
			return fmt.Errorf("hf: export %s: %w", n, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("hf: export: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("hf: export: %w", err)
	}
	return nil
}

// exportFiles are the folder's files, each as a function writing its bytes.
func exportFiles(f *gguf.File, r io.ReaderAt, name string) (map[string]func(io.Writer) error, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("hf: export %s: %s", name, fmt.Sprintf(format, args...))
	}
	arch, _ := f.String("general.architecture")
	ha, ok := hfArchOf[arch]
	if !ok {
		return nil, fail("general.architecture %q has no Hugging Face class here (llama, qwen2, qwen3)", arch)
	}
	p := arch + "."
	u := func(key string) (int, error) {
		v, ok := f.Uint(p + key)
		if !ok || v > 1<<31 {
			return 0, fail("metadata %s%s is missing or out of range", p, key)
		}
		return int(v), nil
	}
	var dim, layers, heads, ffn, ctx int
	var err error
	for _, k := range []struct {
		key string
		dst *int
	}{{"embedding_length", &dim}, {"block_count", &layers}, {"attention.head_count", &heads},
		{"feed_forward_length", &ffn}, {"context_length", &ctx}} {
		if *k.dst, err = u(k.key); err != nil {
			return nil, err
		}
	}
	kvHeads := heads
	if _, ok := f.Lookup(p + "attention.head_count_kv"); ok {
		if kvHeads, err = u("attention.head_count_kv"); err != nil {
			return nil, err
		}
	}
	if heads == 0 || kvHeads == 0 {
		return nil, fail("metadata %sattention.head_count is zero", p)
	}
	headDim := dim / heads
	if _, ok := f.Lookup(p + "attention.key_length"); ok {
		if headDim, err = u("attention.key_length"); err != nil {
			return nil, err
		}
	}
	eps, theta := 1e-5, 10000.0
	if v, ok := f.Float(p + "attention.layer_norm_rms_epsilon"); ok {
		eps = v
	}
	if v, ok := f.Float(p + "rope.freq_base"); ok {
		theta = v
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Shape) != 2 {
		return nil, fail("tensor token_embd.weight is missing or not 2-D")
	}
	vocabSize := int(emb.Shape[1])
	_, hasOutput := f.Tensor("output.weight")

	cfg := map[string]any{
		"architectures": []string{ha.class}, "model_type": ha.modelType,
		"hidden_size": dim, "intermediate_size": ffn, "num_hidden_layers": layers,
		"num_attention_heads": heads, "num_key_value_heads": kvHeads, "head_dim": headDim,
		"max_position_embeddings": ctx, "rms_norm_eps": float32Number(eps), "rope_theta": float32Number(theta),
		"tie_word_embeddings": !hasOutput, "vocab_size": vocabSize, "hidden_act": "silu",
		"attention_bias": arch == "qwen2", "use_cache": true, "rope_scaling": nil,
	}
	if n, ok := f.String("general.name"); ok {
		cfg["_name_or_path"] = n
	}
	if sw, ok := f.Uint(p + "attention.sliding_window"); ok {
		cfg["sliding_window"] = sw
	} else if arch != "llama" {
		cfg["sliding_window"] = nil
		cfg["use_sliding_window"] = false
	}
	if t, ok := f.String(p + "rope.scaling.type"); ok && t == "linear" {
		if fac, ok := f.Float(p + "rope.scaling.factor"); ok && fac != 1 && fac > 0 {
			cfg["rope_scaling"] = map[string]any{"type": "linear", "rope_type": "linear", "factor": float32Number(fac)}
		}
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		s, ok := f.String(ropeScalingKey)
		if !ok || !json.Valid([]byte(s)) {
			return nil, fail("tensor rope_freqs.weight has no rope_scaling to write back (metadata %s is missing)", ropeScalingKey)
		}
		cfg["rope_scaling"] = json.RawMessage(s)
	}

	// Tensors: Hugging Face names and row order, dtypes kept (quantized ones dequantized to F32).
	var infos []safetensors.TensorInfo
	var srcs []gguf.TensorInfo
	count := map[safetensors.DType]int{}
	for _, t := range f.Tensors {
		if t.Name == "rope_freqs.weight" {
			continue
		}
		hn, ok := hfName(t.Name)
		if !ok {
			return nil, fail("tensor %s has no Hugging Face name", t.Name)
		}
		dt := safetensors.F32
		switch t.Type {
		case gguf.TypeF16:
			dt = safetensors.F16
		case gguf.TypeBF16:
			dt = safetensors.BF16
		}
		if len(t.Shape) > 1 {
			count[dt]++
		}
		infos = append(infos, safetensors.TensorInfo{Name: hn, DType: dt, Shape: reversed(t.Shape)})
		srcs = append(srcs, t)
	}
	torchDtype := map[safetensors.DType]string{safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16"}
	best, n := safetensors.F32, -1
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16} {
		if count[dt] > n {
			best, n = dt, count[dt]
		}
	}
	cfg["torch_dtype"] = torchDtype[best]
	weights := func(w io.Writer) error {
		sw, err := safetensors.NewWriter(w, map[string]string{"format": "pt"}, infos)
		if err != nil {
			return err
		}
		for i, t := range srcs {
			raw := make([]byte, t.Size)
			if _, err := r.ReadAt(raw, t.Offset); err != nil {
				return fail("reading tensor %s: %v", t.Name, err)
			}
			if !t.Type.IsFloat() || t.Type == gguf.TypeF64 {
				v := make([]float32, t.Elements())
				if err := ggml.ToFloat32(ggml.Type(t.Type), raw, v); err != nil {
					return fail("tensor %s: %v", t.Name, err)
				}
				raw = make([]byte, 4*len(v))
				if err := safetensors.Encode(safetensors.F32, v, raw); err != nil {
					return err
				}
			}
			if arch == "llama" && (strings.HasSuffix(t.Name, ".attn_q.weight") || strings.HasSuffix(t.Name, ".attn_k.weight")) {
				h := heads
				if strings.HasSuffix(t.Name, ".attn_k.weight") {
					h = kvHeads
				}
				if int64(h*headDim) != t.Shape[1] {
					return fail("tensor %s has %d rows, want %d heads × %d", t.Name, t.Shape[1], h, headDim)
				}
				raw = permuteRows(raw, h, headDim, true)
			}
			if err := sw.WriteTensor(infos[i].Name, raw); err != nil {
				return err
			}
		}
		return sw.Close()
	}

	tok, err := exportTokenizer(f, ctx)
	if err != nil {
		return nil, fail("%v", err)
	}
	if tok.bos >= 0 {
		cfg["bos_token_id"] = tok.bos
	}
	if tok.eos >= 0 {
		cfg["eos_token_id"] = tok.eos
	}
	gen := map[string]any{"_from_model_config": true}
	if tok.bos >= 0 {
		gen["bos_token_id"] = tok.bos
	}
	if tok.eos >= 0 {
		gen["eos_token_id"] = tok.eos
	}
	files := map[string]func(io.Writer) error{
		ConfigName:           jsonFile(cfg),
		SafetensorsName:      weights,
		GenerationConfigName: jsonFile(gen),
		TokenizerJSONName:    jsonFile(tok.json),
		TokenizerConfigName:  jsonFile(tok.config),
	}
	if tok.spm != nil {
		files[TokenizerModelName] = func(w io.Writer) error { _, err := w.Write(tok.spm); return err }
	}
	return files, nil
}

// float32Number writes a float32 metadata value with the fewest digits that read back to the same float32.
func float32Number(v float64) json.Number {
	return json.Number(strconv.FormatFloat(float64(float32(v)), 'g', -1, 32))
}

func jsonFile(v any) func(io.Writer) error {
	return func(w io.Writer) error {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := w.Write(b.Bytes())
		return err
	}
}

type exportedTokenizer struct {
	json, config map[string]any
	spm          []byte
	bos, eos     int
}

// exportTokenizer writes the GGUF vocabulary as tokenizer.json / tokenizer_config.json (and tokenizer.model).
func exportTokenizer(f *gguf.File, ctx int) (*exportedTokenizer, error) {
	model, _ := f.String("tokenizer.ggml.model")
	tk, err := tokenizer.New(f.Lookup)
	if err != nil {
		return nil, err
	}
	v, _ := f.Lookup("tokenizer.ggml.tokens")
	tokens, _ := v.([]string)
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = tokenizer.TypeNormal
	}
	if v, ok := f.Lookup("tokenizer.ggml.token_type"); ok {
		if t, ok := v.([]int32); ok && len(t) == len(tokens) {
			copy(types, t)
		}
	}
	scores := make([]float32, len(tokens))
	if v, ok := f.Lookup("tokenizer.ggml.scores"); ok {
		if s, ok := v.([]float32); ok && len(s) == len(tokens) {
			copy(scores, s)
		}
	}
	id := func(key string) int {
		if v, ok := f.Uint("tokenizer.ggml." + key + "_token_id"); ok && v < uint64(len(tokens)) {
			return int(v)
		}
		return -1
	}
	et := &exportedTokenizer{bos: int(tk.BOS()), eos: int(tk.EOS())}
	unk, pad := id("unknown"), id("padding")
	if model == "llama" && unk < 0 && tk.Kind() == tokenizer.SPM {
		unk = 0
	}
	var added []map[string]any
	decoder := map[string]any{}
	vocab := map[string]int{}
	for i, t := range tokens {
		switch types[i] {
		case tokenizer.TypeControl, tokenizer.TypeUserDefined:
			special := types[i] == tokenizer.TypeControl
			added = append(added, map[string]any{"id": i, "content": t, "single_word": false, "lstrip": false,
				"rstrip": false, "normalized": !special, "special": special})
			decoder[strconv.Itoa(i)] = map[string]any{"content": t, "single_word": false, "lstrip": false,
				"rstrip": false, "normalized": !special, "special": special}
			if model == "llama" {
				vocab[t] = i // SentencePiece vocabularies hold their control pieces
			}
		case tokenizer.TypeUnused:
			if t != fmt.Sprintf("[PAD%d]", i) {
				vocab[t] = i
			}
		default:
			vocab[t] = i
		}
	}
	text := func(id int) any {
		if id < 0 {
			return nil
		}
		return tokens[id]
	}
	var post any
	if tk.AddBOS() && et.bos >= 0 {
		b := tokens[et.bos]
		post = map[string]any{"type": "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": b, "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": b, "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": b, "type_id": 1}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{b: map[string]any{"id": b, "ids": []int{et.bos}, "tokens": []string{b}}}}
	}
	tj := map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added, "post_processor": post}
	tc := map[string]any{"add_bos_token": tk.AddBOS(), "add_eos_token": tk.AddEOS(), "bos_token": text(et.bos),
		"eos_token": text(et.eos), "unk_token": text(unk), "pad_token": text(pad), "model_max_length": ctx,
		"clean_up_tokenization_spaces": false, "added_tokens_decoder": decoder}
	if t, ok := f.String("tokenizer.chat_template"); ok {
		tc["chat_template"] = t
	}
	switch model {
	case "gpt2":
		pre := tk.Pre()
		var preTok any
		switch pre {
		case "gpt-2", "default":
			preTok = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
		case "starcoder", "refact", "smollm":
			preTok = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Digits", "individual_digits": true},
				map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}}}
		default:
			expr, ok := splitByPre[pre]
			if !ok {
				return nil, fmt.Errorf("tokenizer.ggml.pre %q has no Hugging Face pre-tokenizer here (llama-bpe, qwen2, tekken, gpt-2, starcoder)", pre)
			}
			preTok = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Split", "pattern": map[string]any{"Regex": expr}, "behavior": "Isolated", "invert": false},
				map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}}}
		}
		mv, _ := f.Lookup("tokenizer.ggml.merges")
		merges, _ := mv.([]string)
		if merges == nil {
			merges = []string{}
		}
		tj["normalizer"] = nil
		tj["pre_tokenizer"] = preTok
		if post == nil {
			tj["post_processor"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}
		}
		tj["decoder"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}
		tj["model"] = map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": pre == "llama-bpe" || pre == "llama3" || pre == "tekken",
			"vocab": vocab, "merges": merges}
		tc["tokenizer_class"] = "PreTrainedTokenizerFast"
	case "llama":
		addSpace := true
		if v, ok := f.Lookup("tokenizer.ggml.add_space_prefix"); ok {
			if b, ok := v.(bool); ok {
				addSpace = b
			}
		}
		norms := []any{map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"}}
		if addSpace {
			norms = append([]any{map[string]any{"type": "Prepend", "prepend": "▁"}}, norms...)
		}
		decs := []any{map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"}}
		if addSpace {
			decs = append(decs, map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0})
		}
		tj["normalizer"] = map[string]any{"type": "Sequence", "normalizers": norms}
		tj["pre_tokenizer"] = nil
		tj["decoder"] = map[string]any{"type": "Sequence", "decoders": decs}
		tj["model"] = map[string]any{"type": "BPE", "dropout": nil, "unk_token": text(unk), "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
			"vocab": vocab, "merges": spmMerges(tokens, scores, types, vocab)}
		tc["tokenizer_class"] = "LlamaTokenizerFast"
		tc["legacy"] = false
		tc["add_prefix_space"] = addSpace
		et.spm = appendSPM(nil, tokens, scores, types, addSpace)
	default:
		return nil, fmt.Errorf("tokenizer.ggml.model %q cannot be exported", model)
	}
	et.json, et.config = tj, tc
	return et, nil
}

// spmMerges derives BPE merges from a SentencePiece vocabulary as the Hugging Face converter does: every
// split of a piece into two pieces of the vocabulary, ordered by the piece's score (highest first).
func spmMerges(tokens []string, scores []float32, types []int32, vocab map[string]int) [][2]string {
	type cand struct {
		l, r   string
		id     int
		li, ri int
	}
	var cs []cand
	for id, t := range tokens {
		if types[id] != tokenizer.TypeNormal && types[id] != tokenizer.TypeUserDefined {
			continue
		}
		for k := range t {
			if k == 0 {
				continue
			}
			l, r := t[:k], t[k:]
			li, okL := vocab[l]
			ri, okR := vocab[r]
			if okL && okR {
				cs = append(cs, cand{l, r, id, li, ri})
			}
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if scores[a.id] != scores[b.id] {
			return scores[a.id] > scores[b.id]
		}
		if a.id != b.id {
			return a.id < b.id
		}
		if a.li != b.li {
			return a.li < b.li
		}
		return a.ri < b.ri
	})
	out := make([][2]string, len(cs))
	for i, c := range cs {
		out[i] = [2]string{c.l, c.r}
	}
	return out
}
