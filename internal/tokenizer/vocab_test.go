package tokenizer

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
)

// vocabCase is one entry of llama.cpp's tokenizer test files: text and the ids llama.cpp gives for it
// (add_special = false, parse_special = false).
type vocabCase struct {
	text string
	ids  []int32
}

// readCases reads cases.inp and NAME.out as llama.cpp's tests/test-tokenizer-0.cpp does: inputs are
// separated by "\n__ggml_vocab_test__\n", outputs are one line of space-separated ids per input.
func readCases(t testing.TB, name string) []vocabCase {
	t.Helper()
	inp, err := os.ReadFile("testdata/vocab/cases.inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile("testdata/vocab/" + name + ".out")
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var texts []string
	for s := string(inp); s != ""; {
		i := strings.Index(s, sep)
		if i < 0 {
			texts = append(texts, s)
			break
		}
		texts = append(texts, s[:i])
		s = s[i+len(sep):]
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d inputs but %d outputs", name, len(texts), len(lines))
	}
	cases := make([]vocabCase, len(texts))
	for i, line := range lines {
		cases[i].text = texts[i]
		for _, f := range strings.Fields(line) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s line %d: %v", name, i+1, err)
			}
			cases[i].ids = append(cases[i].ids, int32(id))
		}
	}
	return cases
}

// loadVocab opens a gzip-compressed vocabulary-only GGUF from testdata/vocab.
func loadVocab(t testing.TB, name string) *Tokenizer {
	t.Helper()
	f, err := readGGUF(filepath.Join("testdata/vocab", name+".gguf.gz"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := New(f.Lookup)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tok
}

func readGGUF(path string) (*gguf.File, error) {
	raw, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	zr, err := gzip.NewReader(raw)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	return gguf.Read(bytes.NewReader(data), int64(len(data)))
}

// The vocabularies llama.cpp ships test files for whose GGUF is in testdata (those of 4 MiB and more,
// llama-bpe, qwen2, command-r and aquila, are not; llama-bpe is tested from another copy below).
var vocabFiles = []struct{ name, model, pre string }{
	{"llama-spm", "llama", ""},
	{"phi-3", "llama", ""},
	{"gpt-2", "gpt2", "gpt-2"},
	{"mpt", "gpt2", "mpt"},
	{"falcon", "gpt2", "falcon"},
	{"deepseek-llm", "gpt2", "deepseek-llm"},
	{"deepseek-coder", "gpt2", "deepseek-coder"},
	{"refact", "gpt2", "refact"},
	{"starcoder", "gpt2", "starcoder"},
}

func TestLlamaCppVocabCases(t *testing.T) {
	for _, v := range vocabFiles {
		t.Run(v.name, func(t *testing.T) {
			tok := loadVocab(t, v.name)
			if tok.Pre() != v.pre {
				t.Fatalf("pre-tokenizer %q, want %q", tok.Pre(), v.pre)
			}
			checkCases(t, tok, readCases(t, v.name))
		})
	}
}

func checkCases(t *testing.T, tok *Tokenizer, cases []vocabCase) {
	t.Helper()
	pass := 0
	for _, c := range cases {
		got, err := tok.Encode(c.text)
		if err != nil {
			t.Errorf("%q: %v", c.text, err)
			continue
		}
		if !equalIDs(got, c.ids) {
			t.Errorf("%q:\n got %v\nwant %v", c.text, got, c.ids)
			continue
		}
		pass++
	}
	t.Logf("%d/%d cases equal llama.cpp's", pass, len(cases))
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
