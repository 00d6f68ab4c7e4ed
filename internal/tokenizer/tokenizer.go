// Package tokenizer turns text into token ids and back exactly as llama.cpp does for the vocabularies GGUF
// files describe: SentencePiece ("llama": score-driven merges, dummy-space prefix, byte fallback) and
// byte-level BPE ("gpt2": the pre-tokenizer tokenizer.ggml.pre names, then merges by rank, leftmost first).
// Text is always text: a string that looks like a control token stays text (llama.cpp's parse_special =
// false); user-defined tokens are still matched first, as llama.cpp does. Other tokenizer types are refused.
package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	TypeUndefined   = 0
	TypeNormal      = 1
	TypeUnknown     = 2
	TypeControl     = 3
	TypeUserDefined = 4
	TypeUnused      = 5
	TypeByte        = 6
)

// Kind is the tokenizer algorithm.
type Kind int

const (
	SPM Kind = iota // tokenizer.ggml.model = llama
	BPE             // tokenizer.ggml.model = gpt2
)

// Per-token attributes, as llama.cpp derives them from the token types and the model.
const (
	attrNormal = 1 << iota
	attrUnknown
	attrControl
	attrUserDefined
	attrUnused
	attrByte
	attrRStrip
	attrLStrip
)

// MaxTokens bounds the vocabulary a file may declare (the largest real ones have about 260k).
const MaxTokens = 1 << 22

type merge struct {
	rank int32
	id   int32 // the token the pair becomes
}

// Tokenizer encodes and decodes text for one vocabulary. It is safe for concurrent use.
type Tokenizer struct {
	kind   Kind
	pre    string
	tokens []string
	scores []float32
	attrs  []uint8
	ids    map[string]int32

	merges       map[uint64]merge
	preTok       *preTokenizer
	ignoreMerges bool

	bos, eos, unk  int32 // -1 when absent
	addBOS, addEOS bool
	addSpacePrefix bool
	eog            map[int32]bool
	specials       []int32 // user-defined tokens matched as text before tokenizing, longest first
	byteTok        [256]int32
}

// Lookup returns a metadata value by key, as gguf.File.Lookup does.
type Lookup func(key string) (any, bool)

// FromMap is a Lookup over a plain map.
func FromMap(m map[string]any) Lookup {
	return func(k string) (any, bool) { v, ok := m[k]; return v, ok }
}

// New builds the tokenizer the tokenizer.ggml.* metadata describes.
func New(kv Lookup) (*Tokenizer, error) {
	md := meta{kv}
	model, ok, err := md.str("tokenizer.ggml.model")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("tokenizer: tokenizer.ggml.model is missing")
	}
	t := &Tokenizer{bos: -1, eos: -1, unk: -1}
	switch model {
	case "llama":
		t.kind = SPM
		t.bos, t.eos, t.unk = 1, 2, 0
		t.addSpacePrefix, t.addBOS = true, true
	case "gpt2":
		t.kind = BPE
		t.bos, t.eos = 11, 11
	default:
		return nil, fmt.Errorf("tokenizer: tokenizer.ggml.model = %q is not supported (want llama or gpt2)", model)
	}

	v, ok := kv("tokenizer.ggml.tokens")
	if !ok {
		return nil, errors.New("tokenizer: tokenizer.ggml.tokens is missing")
	}
	tokens, ok := v.([]string)
	if !ok {
		return nil, fmt.Errorf("tokenizer: tokenizer.ggml.tokens is %T, want an array of strings", v)
	}
	if len(tokens) == 0 || len(tokens) > MaxTokens {
		return nil, fmt.Errorf("tokenizer: tokenizer.ggml.tokens has %d tokens (want 1..%d)", len(tokens), MaxTokens)
	}
	n := len(tokens)
	t.tokens = make([]string, n)
	t.ids = make(map[string]int32, n)
	for i, s := range tokens {
		if s == "" {
			s = fmt.Sprintf("[EMPTY_%d]", i) // llama.cpp's name for an empty piece
		}
		t.tokens[i] = s
		t.ids[s] = int32(i) // a repeated piece maps to its last id, as in llama.cpp
	}
	t.scores = make([]float32, n)
	if v, ok := kv("tokenizer.ggml.scores"); ok {
		s, ok := v.([]float32)
		if !ok || len(s) != n {
			return nil, fmt.Errorf("tokenizer: tokenizer.ggml.scores must be %d float32 values (got %s)", n, describe(v))
		}
		copy(t.scores, s)
	}
	t.attrs = make([]uint8, n)
	for i := range t.attrs {
		t.attrs[i] = attrNormal
	}
	if v, ok := kv("tokenizer.ggml.token_type"); ok {
		types, ok := v.([]int32)
		if !ok || len(types) != n {
			return nil, fmt.Errorf("tokenizer: tokenizer.ggml.token_type must be %d int32 values (got %s)", n, describe(v))
		}
		for i, ty := range types {
			switch ty {
			case TypeNormal:
				t.attrs[i] = attrNormal
			case TypeUnknown:
				t.attrs[i] = attrUnknown
			case TypeControl:
				t.attrs[i] = attrControl
			case TypeUserDefined:
				t.attrs[i] = attrUserDefined
			case TypeUnused:
				t.attrs[i] = attrUnused
			case TypeByte:
				t.attrs[i] = attrByte
			default:
				t.attrs[i] = 0 // undefined
			}
		}
	}

	if t.kind == BPE {
		if err := t.loadMerges(kv); err != nil {
			return nil, err
		}
		pre, ok, err := md.str("tokenizer.ggml.pre")
		if err != nil {
			return nil, err
		}
		if !ok {
			pre = "default" // llama.cpp warns and uses the default rules
		}
		rule, known := preRules[pre]
		if !known {
			return nil, fmt.Errorf("tokenizer: tokenizer.ggml.pre = %q is not supported", pre)
		}
		t.pre = pre
		if t.preTok, err = newPreTokenizer(rule); err != nil {
			return nil, err
		}
		t.ignoreMerges, t.addBOS = rule.ignoreMerges, rule.addBOS
		if rule.noBOS {
			t.bos = -1
		}
	}
	if b, ok, err := md.boolean("tokenizer.ggml.add_space_prefix"); err != nil {
		return nil, err
	} else if ok {
		t.addSpacePrefix = b
	}
	if t.kind == BPE {
		t.addSpacePrefix = false // llama.cpp's BPE never prefixes a space
	}

	// Special ids: a missing key keeps the default, an id outside the vocabulary too (llama.cpp warns).
	ids := map[string]int32{}
	for _, k := range []string{"bos", "eos", "unknown", "eot", "eom", "padding", "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep", "prefix", "suffix", "middle"} {
		key := "tokenizer.ggml." + k + "_token_id"
		id, ok, err := md.uint(key)
		if err != nil {
			return nil, err
		}
		if ok && id < uint64(n) {
			ids[k] = int32(id)
		}
	}
	if id, ok := ids["bos"]; ok {
		t.bos = id
	}
	if id, ok := ids["eos"]; ok {
		t.eos = id
	}
	if id, ok := ids["unknown"]; ok {
		t.unk = id
	}
	if b, ok, err := md.boolean("tokenizer.ggml.add_bos_token"); err != nil {
		return nil, err
	} else if ok {
		t.addBOS = b
	}
	if b, ok, err := md.boolean("tokenizer.ggml.add_eos_token"); err != nil {
		return nil, err
	} else if ok {
		t.addEOS = b
	}
	if t.addBOS && t.bos < 0 {
		return nil, errors.New("tokenizer: tokenizer.ggml.add_bos_token is set but there is no BOS token")
	}
	if t.addEOS && t.eos < 0 {
		return nil, errors.New("tokenizer: tokenizer.ggml.add_eos_token is set but there is no EOS token")
	}
	t.findEndOfGeneration(ids)
	name, _, _ := md.str("general.name")
	t.collectSpecials(strings.ToLower(name))
	t.findByteTokens()
	return t, nil
}

// loadMerges reads tokenizer.ggml.merges: "left right", in rank order. Both sides and their concatenation
// must be tokens; the first of repeated pairs keeps its rank, as in llama.cpp.
func (t *Tokenizer) loadMerges(kv Lookup) error {
	v, ok := kv("tokenizer.ggml.merges")
	if !ok {
		return errors.New("tokenizer: gpt2 tokenizer without tokenizer.ggml.merges")
	}
	list, ok := v.([]string)
	if !ok {
		return fmt.Errorf("tokenizer: tokenizer.ggml.merges is %T, want an array of strings", v)
	}
	t.merges = make(map[uint64]merge, len(list))
	for i, m := range list {
		sp := -1
		if len(m) > 1 {
			sp = strings.IndexByte(m[1:], ' ')
		}
		if sp < 0 {
			return fmt.Errorf("tokenizer: tokenizer.ggml.merges[%d] = %q is not two pieces separated by a space", i, m)
		}
		left, right := m[:sp+1], m[sp+2:]
		l, okL := t.ids[left]
		r, okR := t.ids[right]
		id, okM := t.ids[left+right]
		if !okL || !okR || !okM {
			return fmt.Errorf("tokenizer: tokenizer.ggml.merges[%d] = %q refers to a piece that is not a token", i, m)
		}
		key := uint64(uint32(l))<<32 | uint64(uint32(r))
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = merge{rank: int32(i), id: id}
		}
	}
	return nil
}

// findEndOfGeneration collects the ids that end generation and marks them control tokens, as llama.cpp
// does by their text (a model that lists <|eot_id|> as user-defined still stops on it).
func (t *Tokenizer) findEndOfGeneration(ids map[string]int32) {
	t.eog = map[int32]bool{}
	byText := func(texts ...string) (int32, bool) {
		for _, s := range texts {
			if id, ok := t.ids[s]; ok {
				return id, true
			}
		}
		return 0, false
	}
	control := func(id int32) {
		t.attrs[id] = t.attrs[id]&^(attrNormal|attrUserDefined|attrUnknown|attrByte|attrUnused) | attrControl
	}
	detect := func(key string, texts ...string) {
		if _, ok := ids[key]; ok {
			return
		}
		for _, s := range texts {
			if id, ok := t.ids[s]; ok {
				ids[key] = id
				control(id)
			}
		}
	}
	detect("eot", "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>")
	detect("eom", "<|eom_id|>")
	detect("fim_pre", "<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>")
	detect("fim_suf", "<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>")
	detect("fim_mid", "<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>")
	detect("fim_pad", "<|fim_pad|>", "<fim-pad>", "<PAD>")
	detect("fim_rep", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>")
	detect("fim_sep", "<|file_sep|>")
	for _, k := range []string{"eot", "eom", "fim_pad", "fim_rep", "fim_sep"} {
		if id, ok := ids[k]; ok {
			t.eog[id] = true
		}
	}
	for _, s := range []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"} {
		if id, ok := byText(s); ok {
			t.eog[id] = true
			control(id)
		}
	}
	if t.eos >= 0 {
		t.eog[t.eos] = true
	}
}

// collectSpecials lists the tokens matched as text before tokenizing. With parse_special = false that is
// the user-defined tokens only (llama.cpp skips control and unknown ones), longest first.
func (t *Tokenizer) collectSpecials(modelName string) {
	var special []int32
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			special = append(special, int32(id))
		}
	}
	if strings.Contains(modelName, "phi-3") || strings.Contains(modelName, "phi3") {
		// llama.cpp strips spaces after Phi-3's special tokens, except these.
		for _, id := range special {
			t.attrs[id] |= attrRStrip
		}
		for s, on := range map[string]bool{"</s>": true, "<unk>": false, "<s>": false, "<|endoftext|>": false} {
			if id, ok := t.ids[s]; ok {
				if on {
					t.attrs[id] |= attrRStrip
				} else {
					t.attrs[id] &^= attrRStrip
				}
			}
		}
	}
	for _, id := range special {
		if t.attrs[id]&attrUserDefined != 0 {
			t.specials = append(t.specials, id)
		}
	}
	sort.SliceStable(t.specials, func(i, j int) bool { return len(t.tokens[t.specials[i]]) > len(t.tokens[t.specials[j]]) })
}

// findByteTokens maps each byte to the token SentencePiece falls back to (<0xXX>, else the byte itself) or,
// for BPE, to the token of its byte-level character.
func (t *Tokenizer) findByteTokens() {
	for b := 0; b < 256; b++ {
		t.byteTok[b] = -1
		var ok bool
		var id int32
		if t.kind == SPM {
			if id, ok = t.ids[fmt.Sprintf("<0x%02X>", b)]; !ok {
				id, ok = t.ids[string([]byte{byte(b)})]
			}
		} else {
			id, ok = t.ids[byteToText[b]]
		}
		if ok {
			t.byteTok[b] = id
		}
	}
}

// Kind is SPM or BPE.
func (t *Tokenizer) Kind() Kind { return t.kind }

// Pre is the BPE pre-tokenizer name ("" for SentencePiece).
func (t *Tokenizer) Pre() string { return t.pre }

// Len is the vocabulary size.
func (t *Tokenizer) Len() int { return len(t.tokens) }

// BOS and EOS are the beginning- and end-of-sequence ids, -1 when the vocabulary has none.
func (t *Tokenizer) BOS() int32 { return t.bos }
func (t *Tokenizer) EOS() int32 { return t.eos }

// AddBOS and AddEOS tell whether llama.cpp puts BOS before / EOS after a tokenized prompt.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG tells whether id ends generation (EOS, end-of-turn and the like).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// Token is the text of id as stored in the vocabulary.
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

type meta struct{ kv Lookup }

func (m meta) str(key string) (string, bool, error) {
	v, ok := m.kv(key)
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("tokenizer: %s is %T, want a string", key, v)
	}
	return s, true, nil
}

func (m meta) boolean(key string) (bool, bool, error) {
	v, ok := m.kv(key)
	if !ok {
		return false, false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, false, fmt.Errorf("tokenizer: %s is %T, want a bool", key, v)
	}
	return b, true, nil
}

func (m meta) uint(key string) (uint64, bool, error) {
	v, ok := m.kv(key)
	if !ok {
		return 0, false, nil
	}
	switch x := v.(type) {
	case uint8:
		return uint64(x), true, nil
	case uint16:
		return uint64(x), true, nil
	case uint32:
		return uint64(x), true, nil
	case uint64:
		return x, true, nil
	case int8:
		if x >= 0 {
			return uint64(x), true, nil
		}
	case int16:
		if x >= 0 {
			return uint64(x), true, nil
		}
	case int32:
		if x >= 0 {
			return uint64(x), true, nil
		}
	case int64:
		if x >= 0 {
			return uint64(x), true, nil
		}
	}
	return 0, false, fmt.Errorf("tokenizer: %s is %v (%T), want a token id", key, v, v)
}

func describe(v any) string {
	switch x := v.(type) {
	case []float32:
		return fmt.Sprintf("%d float32 values", len(x))
	case []int32:
		return fmt.Sprintf("%d int32 values", len(x))
	}
	return fmt.Sprintf("%T", v)
}
