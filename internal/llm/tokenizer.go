package llm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/ollama/ollama/tokenizer"
)

// Tokenizer turns text into token ids and back.
type Tokenizer interface {
	// Encode tokenizes s without adding BOS/EOS.
	Encode(s string) ([]int32, error)
	Decode(ids []int32) (string, error)
	BOS() int32
	EOS() int32
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

func (ByteTokenizer) BOS() int32 { return byteBOS }
func (ByteTokenizer) EOS() int32 { return byteEOS }

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

// gpt2Pretokenizer is the GPT-2 split pattern, used for BPE vocabularies.
const gpt2Pretokenizer = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// ollamaTokenizer wraps ollama's SentencePiece and BPE implementations for models made elsewhere.
type ollamaTokenizer struct {
	tok      tokenizer.Tokenizer
	bos, eos int32
	meta     []gguf.KV
}

func (t *ollamaTokenizer) Encode(s string) ([]int32, error) { return t.tok.Encode(s, false) }
func (t *ollamaTokenizer) Decode(ids []int32) (string, error) {
	return t.tok.Decode(ids)
}
func (t *ollamaTokenizer) BOS() int32          { return t.bos }
func (t *ollamaTokenizer) EOS() int32          { return t.eos }
func (t *ollamaTokenizer) metadata() []gguf.KV { return t.meta }

// tokenizerFromGGUF builds the tokenizer a GGUF file describes.
func tokenizerFromGGUF(f *gguf.File, vocab int) (Tokenizer, error) {
	model, ok := f.String("tokenizer.ggml.model")
	if !ok {
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
	if model == "llama" && isByteVocab(tokens) {
		return ByteTokenizer{}, nil
	}
	var meta []gguf.KV
	for _, kv := range f.KVs {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			meta = append(meta, kv)
		}
	}
	voc := &tokenizer.Vocabulary{Values: tokens}
	if v, ok := f.Lookup("tokenizer.ggml.scores"); ok {
		voc.Scores, _ = v.([]float32)
	}
	if v, ok := f.Lookup("tokenizer.ggml.token_type"); ok {
		voc.Types, _ = v.([]int32)
	}
	if v, ok := f.Lookup("tokenizer.ggml.merges"); ok {
		voc.Merges, _ = v.([]string)
	}
	if len(voc.Types) != 0 && len(voc.Types) != len(tokens) || len(voc.Scores) != 0 && len(voc.Scores) != len(tokens) {
		return nil, errors.New("llm: tokenizer.ggml.scores or token_type does not match the token list")
	}
	if len(voc.Types) == 0 {
		voc.Types = make([]int32, len(tokens))
		for i := range voc.Types {
			voc.Types[i] = 1
		}
	}
	t := &ollamaTokenizer{bos: -1, eos: -1, meta: meta}
	if id, ok := f.Uint("tokenizer.ggml.bos_token_id"); ok && id < uint64(len(tokens)) {
		t.bos = int32(id)
		voc.BOS = []int32{t.bos}
	}
	if id, ok := f.Uint("tokenizer.ggml.eos_token_id"); ok && id < uint64(len(tokens)) {
		t.eos = int32(id)
		voc.EOS = []int32{t.eos}
	}
	switch model {
	case "llama":
		t.tok = tokenizer.NewSentencePiece(voc)
	case "gpt2":
		if len(voc.Merges) == 0 {
			return nil, errors.New("llm: gpt2 tokenizer without tokenizer.ggml.merges")
		}
		t.tok = tokenizer.NewBytePairEncoding(voc, gpt2Pretokenizer)
	default:
		return nil, fmt.Errorf("llm: tokenizer model %q is not supported (want llama or gpt2)", model)
	}
	return t, nil
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
