package tokenizer

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

func readGzipLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// llama3Meta is the metadata of a Llama 3 GGUF (tokenizer.ggml.pre = pre), built from testdata/llama3:
// the 128000 regular tokens and their merges, then Llama 3's 256 control tokens.
func llama3Meta(t testing.TB, pre string) map[string]any {
	t.Helper()
	tokens := readGzipLines(t, "testdata/llama3/tokens.txt.gz")
	merges := readGzipLines(t, "testdata/llama3/merges.txt.gz")
	if len(tokens) != 128000 {
		t.Fatalf("%d tokens, want 128000", len(tokens))
	}
	types := make([]int32, len(tokens), len(tokens)+256)
	for i := range types {
		types[i] = TypeNormal
	}
	named := []string{"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
		"<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
		"<|eom_id|>", "<|eot_id|>", "<|python_tag|>"}
	for i := 0; i < 256; i++ {
		s := fmt.Sprintf("<|reserved_special_token_%d|>", i-len(named)+3)
		if i < len(named) {
			s = named[i]
		}
		tokens = append(tokens, s)
		types = append(types, TypeControl)
	}
	return map[string]any{
		"tokenizer.ggml.model":        "gpt2",
		"tokenizer.ggml.pre":          pre,
		"tokenizer.ggml.tokens":       tokens,
		"tokenizer.ggml.token_type":   types,
		"tokenizer.ggml.merges":       merges,
		"tokenizer.ggml.bos_token_id": uint32(128000),
		"tokenizer.ggml.eos_token_id": uint32(128009),
	}
}

// llama.cpp's llama-bpe cases, on the Llama 3 vocabulary (its GGUF is not in the llama.cpp snapshot).
func TestLlamaBPEVocabCases(t *testing.T) {
	tok, err := New(FromMap(llama3Meta(t, "llama-bpe")))
	if err != nil {
		t.Fatal(err)
	}
	if !tok.AddBOS() || tok.BOS() != 128000 || !tok.IsEOG(128009) || !tok.IsEOG(128008) {
		t.Fatalf("add_bos %v bos %d, eog(eot_id) %v", tok.AddBOS(), tok.BOS(), tok.IsEOG(128009))
	}
	checkCases(t, tok, readCases(t, "llama-bpe"))
	// Control-token text is text.
	got, err := tok.Encode("<|begin_of_text|>hi")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range got {
		if id >= 128000 {
			t.Fatalf("control-token text became token %d: %v", id, got)
		}
	}
	if p, _ := tok.EncodePrompt("hi"); len(p) != 2 || p[0] != 128000 {
		t.Fatalf("prompt %v, want BOS first", p)
	}
}
