package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/tokenizer"
)

// vocab is a tokenizer in GGUF's terms (tokenizer.ggml.*).
type vocab struct {
	model          string // "gpt2" (byte-level BPE) or "llama" (SentencePiece)
	pre            string // gpt2 only
	tokens         []string
	scores         []float32 // llama only
	types          []int32
	merges         []string // gpt2 only
	bos, eos, unk  int      // -1: none
	pad            int
	addBOS, addEOS *bool
	addSpacePrefix *bool
	chatTemplate   string
}

// kvs are the tokenizer.ggml.* metadata of v, in a fixed order.
func (v *vocab) kvs() []gguf.KV {
	kvs := []gguf.KV{{Key: "tokenizer.ggml.model", Value: v.model}}
	if v.model == "gpt2" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.pre", Value: v.pre})
	}
	kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.tokens", Value: v.tokens})
	if v.model == "llama" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.scores", Value: v.scores})
	}
	kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.token_type", Value: v.types})
	if v.model == "gpt2" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.merges", Value: v.merges})
	}
	for _, id := range []struct {
		key string
		id  int
	}{{"bos", v.bos}, {"eos", v.eos}, {"unknown", v.unk}, {"padding", v.pad}} {
		if id.id >= 0 {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + id.key + "_token_id", Value: uint32(id.id)})
		}
	}
	if v.addBOS != nil {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: *v.addBOS})
	}
	if v.addEOS != nil {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: *v.addEOS})
	}
	if v.addSpacePrefix != nil && v.model == "llama" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: *v.addSpacePrefix})
	}
	if v.chatTemplate != "" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.chat_template", Value: v.chatTemplate})
	}
	return kvs
}

// check builds the engine's tokenizer from v, so a vocabulary the engine (and llama.cpp) would refuse is
// refused at import.
func (v *vocab) check() error {
	m := map[string]any{}
	for _, kv := range v.kvs() {
		m[kv.Key] = kv.Value
	}
	_, err := tokenizer.New(tokenizer.FromMap(m))
	return err
}

// tokenizerJSON is what this package reads of a tokenizer.json.
type tokenizerJSON struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    *component      `json:"normalizer"`
	PreTokenizer  *component      `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       *component      `json:"decoder"`
	Model         struct {
		Type         string            `json:"type"`
		Vocab        json.RawMessage   `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		ByteFallback bool              `json:"byte_fallback"`
		UnkToken     *string           `json:"unk_token"`
	} `json:"model"`
}

type addedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

// component is a normalizer, pre-tokenizer or decoder of tokenizer.json (the fields of every kind used here).
type component struct {
	Type             string      `json:"type"`
	Pretokenizers    []component `json:"pretokenizers"`
	Normalizers      []component `json:"normalizers"`
	Pattern          *pattern    `json:"pattern,omitempty"`
	Behavior         string      `json:"behavior,omitempty"`
	Invert           bool        `json:"invert"`
	UseRegex         *bool       `json:"use_regex,omitempty"`
	AddPrefixSpace   *bool       `json:"add_prefix_space,omitempty"`
	IndividualDigits bool        `json:"individual_digits"`
	Prepend          string      `json:"prepend,omitempty"`
	Content          string      `json:"content,omitempty"`
	Replacement      string      `json:"replacement,omitempty"`
	PrependScheme    string      `json:"prepend_scheme,omitempty"`
}

type pattern struct {
	Regex  *string `json:"Regex,omitempty"`
	String *string `json:"String,omitempty"`
}

// The split expressions of the Hugging Face tokenizers llama.cpp knows by tokenizer.ggml.pre.
const (
	hfLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	hfQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	hfTekken = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// preBySplit maps a Split pre-tokenizer's expression to the tokenizer.ggml.pre value llama.cpp's converter
// writes for that tokenizer family.
var preBySplit = map[string]string{hfLlama3: "llama-bpe", hfQwen2: "qwen2", hfTekken: "tekken"}

// splitByPre is the inverse, for Export.
var splitByPre = map[string]string{"llama-bpe": hfLlama3, "llama3": hfLlama3, "llama-v3": hfLlama3,
	"qwen2": hfQwen2, "tekken": hfTekken}

// preName finds tokenizer.ggml.pre for a byte-level BPE pre-tokenizer: a Split on a known expression
// followed by ByteLevel without its own regex, ByteLevel with GPT-2's regex, or Digits then ByteLevel.
func preName(c *component) (string, error) {
	if c == nil {
		return "", fmt.Errorf("pre_tokenizer is null (a byte-level BPE tokenizer needs one)")
	}
	steps := []component{*c}
	if c.Type == "Sequence" {
		steps = c.Pretokenizers
	}
	isByteLevel := func(s component, regex bool) bool {
		return s.Type == "ByteLevel" && (s.UseRegex == nil || *s.UseRegex) == regex
	}
	switch {
	case len(steps) == 1 && isByteLevel(steps[0], true):
		return "gpt-2", nil
	case len(steps) == 2 && steps[0].Type == "Digits" && steps[0].IndividualDigits && isByteLevel(steps[1], true):
		return "starcoder", nil
	case len(steps) == 2 && steps[0].Type == "Split" && isByteLevel(steps[1], false):
		s := steps[0]
		if s.Pattern == nil || s.Pattern.Regex == nil {
			return "", fmt.Errorf("pre_tokenizer: Split without a Regex pattern is not supported")
		}
		if s.Invert || (s.Behavior != "" && s.Behavior != "Isolated") {
			return "", fmt.Errorf("pre_tokenizer: Split with behavior %q, invert %v is not supported", s.Behavior, s.Invert)
		}
		if pre, ok := preBySplit[*s.Pattern.Regex]; ok {
			return pre, nil
		}
		return "", fmt.Errorf("pre_tokenizer: the Split expression %q is not one llama.cpp knows (llama 3, qwen2, tekken)", *s.Pattern.Regex)
	}
	var kinds []string
	for _, s := range steps {
		kinds = append(kinds, s.Type)
	}
	return "", fmt.Errorf("pre_tokenizer %v is not a byte-level BPE pre-tokenizer llama.cpp knows", kinds)
}

// hfSpecial is a special token of tokenizer_config.json: a string or an object with "content".
type hfSpecial string

func (s *hfSpecial) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(b, &str) == nil {
		*s = hfSpecial(str)
		return nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("want a string or an object with content")
	}
	*s = hfSpecial(obj.Content)
	return nil
}

// chatTemplates is tokenizer_config.json's chat_template: one template, or a list of named ones.
type chatTemplates string

func (c *chatTemplates) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(b, &str) == nil {
		*c = chatTemplates(str)
		return nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a string or a list of {name, template}")
	}
	for i, t := range list {
		if i == 0 || t.Name == "default" {
			*c = chatTemplates(t.Template)
		}
	}
	return nil
}

type tokenizerConfig struct {
	BOS                 hfSpecial          `json:"bos_token"`
	EOS                 hfSpecial          `json:"eos_token"`
	UNK                 hfSpecial          `json:"unk_token"`
	PAD                 hfSpecial          `json:"pad_token"`
	AddBOS              *bool              `json:"add_bos_token"`
	AddEOS              *bool              `json:"add_eos_token"`
	ChatTemplate        chatTemplates      `json:"chat_template"`
	AddedTokensDecoder  map[string]addedTD `json:"added_tokens_decoder"`
	AddPrefixSpaceLegac *bool              `json:"add_prefix_space"`
}

type addedTD struct {
	Content string `json:"content"`
	Special bool   `json:"special"`
}

// looksSpecial is llama.cpp's converter's test for added tokens that are control tokens by their text.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>") && len(s) > 4 ||
		strings.HasPrefix(s, "<｜") && strings.HasSuffix(s, "｜>")
}

// tokenizerSources are the files a tokenizer is read from, already read (nil: absent).
type tokenizerSources struct {
	folder                 string
	json, model, config    []byte
	chatTemplateFile       []byte
	configJSON, genConfig  *Config
	genEOS                 []int
	jsonName, modelName    string
	configName, folderName string
}

// buildVocab reads the folder's tokenizer for a model of n embedding rows: tokenizer.model
// (SentencePiece) when present, as llama.cpp's converter prefers it, else tokenizer.json (byte-level BPE).
func buildVocab(src tokenizerSources, n int) (*vocab, error) {
	var tc tokenizerConfig
	if src.config != nil {
		if err := json.Unmarshal(src.config, &tc); err != nil {
			return nil, jsonError(src.configName, src.config, err)
		}
	}
	var v *vocab
	var err error
	switch {
	case src.model != nil:
		v, err = spmVocab(src.model, n)
		if err != nil {
			return nil, fmt.Errorf("hf: model %s: %s: %v", src.folderName, src.modelName, err)
		}
		var tj tokenizerJSON
		if src.json != nil {
			if err := json.Unmarshal(src.json, &tj); err != nil {
				return nil, jsonError(src.jsonName, src.json, err)
			}
		}
		if err := v.addTokens(tj.AddedTokens, tc.AddedTokensDecoder, false); err != nil {
			return nil, fmt.Errorf("hf: model %s: %v", src.folderName, err)
		}
	case src.json != nil:
		v, err = bpeVocab(src.json, n)
		if err != nil {
			return nil, fmt.Errorf("hf: model %s: %s: %v", src.folderName, src.jsonName, err)
		}
		if err := v.addTokens(nil, tc.AddedTokensDecoder, true); err != nil {
			return nil, fmt.Errorf("hf: model %s: %s: %v", src.folderName, src.configName, err)
		}
	default:
		return nil, fmt.Errorf("hf: model %s: neither %s nor %s is there", src.folderName, TokenizerJSONName, TokenizerModelName)
	}
	// Special ids: tokenizer_config.json's tokens by text first, then config.json's and
	// generation_config.json's ids (llama.cpp's converter reads them in that order).
	byText := map[string]int{}
	for i, t := range v.tokens {
		if _, dup := byText[t]; !dup {
			byText[t] = i
		}
	}
	pick := func(s hfSpecial, dst *int) {
		if s == "" {
			return
		}
		if id, ok := byText[string(s)]; ok {
			*dst = id
		}
	}
	pick(tc.BOS, &v.bos)
	pick(tc.EOS, &v.eos)
	pick(tc.UNK, &v.unk)
	pick(tc.PAD, &v.pad)
	fromIDs := func(ids []int, dst *int) {
		if *dst < 0 && len(ids) > 0 && ids[0] >= 0 && ids[0] < n {
			*dst = ids[0]
		}
	}
	if c := src.configJSON; c != nil {
		fromIDs(tokenIDs(c.BOSTokenID), &v.bos)
		fromIDs(tokenIDs(c.EOSTokenID), &v.eos)
		fromIDs(tokenIDs(c.PadTokenID), &v.pad)
	}
	if c := src.genConfig; c != nil {
		fromIDs(tokenIDs(c.BOSTokenID), &v.bos)
		fromIDs(tokenIDs(c.EOSTokenID), &v.eos)
	}
	if tc.AddBOS != nil {
		v.addBOS = tc.AddBOS
	}
	if tc.AddEOS != nil {
		v.addEOS = tc.AddEOS
	}
	v.chatTemplate = string(tc.ChatTemplate)
	if v.chatTemplate == "" && src.chatTemplateFile != nil {
		v.chatTemplate = string(src.chatTemplateFile)
	}
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("hf: model %s: the converted tokenizer is refused: %v", src.folderName, err)
	}
	return v, nil
}

// addTokens puts added tokens in place (tokenizer.json's added_tokens, then tokenizer_config.json's
// added_tokens_decoder for the ids it alone names): special ones are control tokens, others user-defined.
func (v *vocab) addTokens(list []addedToken, decoder map[string]addedTD, onlyNew bool) error {
	seen := map[int]bool{}
	put := func(where string, id int, content string, special bool) error {
		if id < 0 || id >= len(v.tokens) {
			return fmt.Errorf("%s: added token %q has id %d outside the model's %d embedding rows", where, content, id, len(v.tokens))
		}
		if content == "" {
			return fmt.Errorf("%s: added token %d has no content", where, id)
		}
		seen[id] = true
		if v.model == "llama" && v.tokens[id] == content && v.types[id] != tokenizer.TypeUnused {
			return nil // a piece of tokenizer.model: its own score and type stand
		}
		v.tokens[id] = content
		if v.scores != nil {
			v.scores[id] = -1000
		}
		if special || looksSpecial(content) {
			v.types[id] = tokenizer.TypeControl
		} else {
			v.types[id] = tokenizer.TypeUserDefined
		}
		return nil
	}
	for _, a := range list {
		if err := put(TokenizerJSONName+" added_tokens", a.ID, a.Content, a.Special); err != nil {
			return err
		}
	}
	if onlyNew && decoder != nil {
		// tokenizer.json's added_tokens were placed by bpeVocab already; take only ids it lacks.
		for i, t := range v.types {
			if t == tokenizer.TypeControl || t == tokenizer.TypeUserDefined {
				seen[i] = true
			}
		}
	}
	ids := make([]int, 0, len(decoder))
	for k := range decoder {
		id, err := strconv.Atoi(k)
		if err != nil {
			return fmt.Errorf("%s added_tokens_decoder: key %q is not a token id", TokenizerConfigName, k)
		}
		ids = append(ids, id)
	}
	for _, id := range sortedInts(ids) {
		if seen[id] {
			continue
		}
		d := decoder[strconv.Itoa(id)]
		if err := put(TokenizerConfigName+" added_tokens_decoder", id, d.Content, d.Special); err != nil {
			return err
		}
	}
	return nil
}

// bpeVocab reads a byte-level BPE tokenizer.json for a model of n embedding rows; ids beyond the
// tokenizer's are padding ([PADi], unused), as llama.cpp's converter writes them.
func bpeVocab(data []byte, n int) (*vocab, error) {
	var tj tokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, jsonError(TokenizerJSONName, data, err)
	}
	if tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("key model.type: %q is not supported (byte-level BPE is; SentencePiece needs %s)", tj.Model.Type, TokenizerModelName)
	}
	if tj.Model.ByteFallback {
		return nil, fmt.Errorf("key model.byte_fallback: a SentencePiece-style BPE tokenizer needs its %s", TokenizerModelName)
	}
	pre, err := preName(tj.PreTokenizer)
	if err != nil {
		return nil, fmt.Errorf("key %v", err)
	}
	var byPiece map[string]int
	if err := json.Unmarshal(tj.Model.Vocab, &byPiece); err != nil {
		return nil, fmt.Errorf("key model.vocab: not an object of token ids: %v", err)
	}
	v := &vocab{model: "gpt2", pre: pre, tokens: make([]string, n), types: make([]int32, n), bos: -1, eos: -1, unk: -1, pad: -1}
	for piece, id := range byPiece {
		if id < 0 || id >= n {
			return nil, fmt.Errorf("key model.vocab: token %q has id %d outside the model's %d embedding rows", piece, id, n)
		}
		if v.tokens[id] != "" {
			return nil, fmt.Errorf("key model.vocab: id %d is given to both %q and %q", id, v.tokens[id], piece)
		}
		v.tokens[id] = piece
		v.types[id] = tokenizer.TypeNormal
	}
	if err := v.addTokens(tj.AddedTokens, nil, false); err != nil {
		return nil, err
	}
	for i := range v.tokens {
		if v.tokens[i] == "" {
			v.tokens[i] = fmt.Sprintf("[PAD%d]", i)
			v.types[i] = tokenizer.TypeUnused
		}
	}
	v.merges = make([]string, 0, len(tj.Model.Merges))
	for i, raw := range tj.Model.Merges {
		m, err := mergeText(raw)
		if err != nil {
			return nil, fmt.Errorf("key model.merges[%d]: %v", i, err)
		}
		v.merges = append(v.merges, m)
	}
	v.addBOS = postProcessorAddsBOS(tj.PostProcessor)
	return v, nil
}

// mergeText is one merge as GGUF stores it ("left right"), from either of tokenizer.json's forms.
func mergeText(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if i := strings.IndexByte(s, ' '); i <= 0 || i == len(s)-1 || strings.Count(s, " ") != 1 {
			return "", fmt.Errorf("%q is not two pieces separated by one space", s)
		}
		return s, nil
	}
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return "", fmt.Errorf("want \"a b\" or [\"a\", \"b\"]")
	}
	if pair[0] == "" || pair[1] == "" || strings.Contains(pair[0]+pair[1], " ") {
		return "", fmt.Errorf("pieces %q cannot be stored as a GGUF merge (empty or holding a space)", pair)
	}
	return pair[0] + " " + pair[1], nil
}

// postProcessorAddsBOS reads whether a TemplateProcessing post-processor starts a single sequence with a
// special token (how Llama 3's tokenizer.json adds BOS); nil when it says nothing.
func postProcessorAddsBOS(raw json.RawMessage) *bool {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var pp struct {
		Type       string            `json:"type"`
		Processors []json.RawMessage `json:"processors"`
		Single     []map[string]any  `json:"single"`
	}
	if json.Unmarshal(raw, &pp) != nil {
		return nil
	}
	if pp.Type == "Sequence" {
		for _, p := range pp.Processors {
			if b := postProcessorAddsBOS(p); b != nil {
				return b
			}
		}
		return nil
	}
	if pp.Type != "TemplateProcessing" {
		return nil
	}
	special := false
	if len(pp.Single) > 0 {
		_, special = pp.Single[0]["SpecialToken"]
	}
	return &special
}

func sortedInts(xs []int) []int {
	sort.Ints(xs)
	return xs
}
