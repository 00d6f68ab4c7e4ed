package llm

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/tokenizer"
)

// Our byte vocabulary read as llama.cpp reads it (internal/tokenizer's SentencePiece) gives the ids and the
// text ByteTokenizer gives, so a tiny model sees the same tokens in llama.cpp as in training. (Not for every
// invalid UTF-8: a stray lead byte swallows the bytes after it, a following space included, which llama.cpp
// then emits as the bytes of "▁" where ByteTokenizer has its space token.)
func TestByteVocabThroughSentencePiece(t *testing.T) {
	meta := map[string]any{}
	for _, kv := range (ByteTokenizer{}).metadata() {
		meta[kv.Key] = kv.Value
	}
	spm, err := tokenizer.New(tokenizer.FromMap(meta))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Question: 12+30=", " 42", "a  b\tc\nd", "héllo wörld", "#### -1,234.5", "<s> </s>", "\xff\xfe", ""} {
		want, _ := ByteTokenizer{}.Encode(s)
		got, err := spm.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: SentencePiece %v, ByteTokenizer %v", s, got, want)
		}
		back, err := spm.Decode(got)
		if err != nil || back != s {
			t.Errorf("%q decoded as %q (%v)", s, back, err)
		}
	}
	if spm.AddBOS() != (ByteTokenizer{}).AddBOS() || spm.AddEOS() != (ByteTokenizer{}).AddEOS() || spm.BOS() != byteBOS || spm.EOS() != byteEOS {
		t.Fatal("BOS/EOS settings differ")
	}
}

// A real BPE vocabulary (llama.cpp's gpt-2 test vocabulary) loads through tokenizerFromGGUF with
// llama.cpp's defaults: no BOS added, control-token text kept as text.
func TestGGUFTokenizer(t *testing.T) {
	raw, err := os.ReadFile("../tokenizer/testdata/vocab/gpt-2.gguf.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizerFromGGUF(f, 50257)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AddBOS() || tok.AddEOS() {
		t.Fatalf("gpt-2 adds BOS %v / EOS %v, llama.cpp adds neither", tok.AddBOS(), tok.AddEOS())
	}
	ids, err := tok.Encode("Hello world<|endoftext|>")
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{15496, 995, 27, 91, 437, 1659, 5239, 91, 29}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
	if !tok.IsEOG(50256) {
		t.Fatal("<|endoftext|> does not end generation")
	}
	if _, err := tokenizerFromGGUF(f, 50000); err == nil {
		t.Fatal("a vocabulary that does not match the embedding was accepted")
	}
}
