package llm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/tokenizer"
)

// Tokenizer turns text into token ids and back. Text is always text: a string that looks like a control
// token is not turned into one.
type Tokenizer interface {
	// Encode tokenizes s without adding BOS/EOS.
	Encode(s string) ([]int32, error)
	Decode(ids []int32) (string, error)
	BOS() int32
	EOS() int32
	// AddBOS and AddEOS tell whether a prompt starts with BOS / ends with EOS (tokenizer.ggml.add_bos_token
	// and add_eos_token, with llama.cpp's defaults).
	AddBOS() bool
	AddEOS() bool
	// IsEOG tells whether id ends generation (EOS, end-of-turn tokens and the like).
	IsEOG(id int32) bool
	// metadata is the tokenizer.ggml.* keys that describe it in a GGUF file.
	metadata() []gguf.KV
}

// Byte-level vocabulary of the project's tiny models. It is a SentencePiece ("llama") vocabulary whose only
// pieces are the 256 byte tokens and "▁" (SentencePiece's space), so llama.cpp and Ollama tokenize text
// exactly as ByteTokenizer does: every space becomes "▁", every other byte its byte token.
const (
	byteUnk      = 0
	byteBOS      = 1
	byteEOS      = 2
	byteFirst    = 3 // <0x00> .. <0xFF> are ids 3..258
	byteSpace    = byteFirst + 256
	ByteVocabLen = byteSpace + 1
)

// ByteTokenizer is the tokenizer of models created from nothing.
type ByteTokenizer struct{}

func (ByteTokenizer) BOS() int32          { return byteBOS }
func (ByteTokenizer) EOS() int32          { return byteEOS }
func (ByteTokenizer) AddBOS() bool        { return true }
func (ByteTokenizer) AddEOS() bool        { return false }
func (ByteTokenizer) IsEOG(id int32) bool { return id == byteEOS }

func (ByteTokenizer) Encode(s string) ([]int32, error) {
	ids := make([]int32, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			ids[i] = byteSpace
		} else {
			ids[i] = byteFirst + int32(s[i])
		}
	}
	return ids, nil
}

func (ByteTokenizer) Decode(ids []int32) (string, error) {
	var b strings.Builder
	for _, id := range ids {
		switch {
		case id == byteSpace:
			b.WriteByte(' ')
		case id >= byteFirst && id < byteSpace:
			b.WriteByte(byte(id - byteFirst))
		case id == byteBOS || id == byteEOS || id == byteUnk:
		default:
			return "", fmt.Errorf("llm: token id %d is outside the byte vocabulary", id)
		}
	}
	return b.String(), nil
}

func byteVocab() (tokens []string, scores []float32, types []int32) {
	tokens = []string{"<unk>", "<s>", "</s>"}
	types = []int32{2, 3, 3} // UNKNOWN, CONTROL, CONTROL
	for b := 0; b < 256; b++ {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6) // BYTE
	}
	tokens = append(tokens, "▁")
	types = append(types, 1) // NORMAL
	scores = make([]float32, len(tokens))
	return
}

func (ByteTokenizer) metadata() []gguf.KV {
	tokens, scores, types := byteVocab()
	return []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Value: tokens},
		{Key: "tokenizer.ggml.scores", Value: scores},
		{Key: "tokenizer.ggml.token_type", Value: types},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(byteUnk)},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(byteBOS)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(byteEOS)},
		{Key: "tokenizer.ggml.add_bos_token", Value: true},
		{Key: "tokenizer.ggml.add_eos_token", Value: false},
		{Key: "tokenizer.ggml.add_space_prefix", Value: false},
	}
}

// ggufTokenizer is the tokenizer of models made elsewhere: llama.cpp's SentencePiece or BPE, read from the
// file's tokenizer.ggml.* metadata.
type ggufTokenizer struct {
	tok  *tokenizer.Tokenizer
	meta []gguf.KV
}

func (t *ggufTokenizer) Encode(s string) ([]int32, error)   { return t.tok.Encode(s) }
func (t *ggufTokenizer) Decode(ids []int32) (string, error) { return t.tok.Decode(ids) }
func (t *ggufTokenizer) BOS() int32                         { return t.tok.BOS() }
func (t *ggufTokenizer) EOS() int32                         { return t.tok.EOS() }
func (t *ggufTokenizer) AddBOS() bool                       { return t.tok.AddBOS() }
func (t *ggufTokenizer) AddEOS() bool                       { return t.tok.AddEOS() }
func (t *ggufTokenizer) IsEOG(id int32) bool                { return t.tok.IsEOG(id) }
func (t *ggufTokenizer) metadata() []gguf.KV                { return t.meta }

// tokenizerFromGGUF builds the tokenizer a GGUF file describes.
func tokenizerFromGGUF(f *gguf.File, vocab int) (Tokenizer, error) {
	if _, ok := f.String("tokenizer.ggml.model"); !ok {
		return nil, errors.New("llm: the model has no tokenizer (tokenizer.ggml.model is missing)")
	}
	v, _ := f.Lookup("tokenizer.ggml.tokens")
	tokens, ok := v.([]string)
	if !ok || len(tokens) == 0 {
		return nil, errors.New("llm: the model has no tokenizer (tokenizer.ggml.tokens is missing)")
	}
	if len(tokens) != vocab {
		return nil, fmt.Errorf("llm: tokenizer has %d tokens but token_embd.weight has %d rows", len(tokens), vocab)
	}
	if model, _ := f.String("tokenizer.ggml.model"); model == "llama" && isByteVocab(tokens) {
		return ByteTokenizer{}, nil
	}
	tok, err := tokenizer.New(f.Lookup)
	if err != nil {
		return nil, err
	}
	var meta []gguf.KV
	for _, kv := range f.KVs {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			meta = append(meta, kv)
		}
	}
	return &ggufTokenizer{tok: tok, meta: meta}, nil
}

func isByteVocab(tokens []string) bool {
	want, _, _ := byteVocab()
	if len(tokens) != len(want) {
		return false
	}
	for i := range want {
		if tokens[i] != want[i] {
			return false
		}
	}
	return true
}
