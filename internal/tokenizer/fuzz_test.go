package tokenizer

import (
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// FuzzNew builds tokenizers from fuzzed metadata: it must return a tokenizer or an error, never panic, and
// what it returns must encode without panicking.
func FuzzNew(f *testing.F) {
	f.Add("llama", "", "<unk>\n<s>\n</s>\n▁\nh\ni\n▁h", "", "hi there")
	f.Add("gpt2", "gpt-2", "h\ni\nhi\nĠ\nĠhi", "h i\nĠ hi", "hi hi")
	f.Add("gpt2", "llama-bpe", "a\nb\nab", "a b\nab x", "ab")
	f.Add("gpt2", "foo", "a", "", "a")
	f.Add("bert", "", "a", "", "a")
	f.Fuzz(func(t *testing.T, model, pre, tokens, merges, text string) {
		m := map[string]any{"tokenizer.ggml.model": model, "tokenizer.ggml.tokens": strings.Split(tokens, "\n")}
		if pre != "" {
			m["tokenizer.ggml.pre"] = pre
		}
		if merges != "" {
			m["tokenizer.ggml.merges"] = strings.Split(merges, "\n")
		}
		tok, err := New(FromMap(m))
		if err != nil {
			return
		}
		ids, err := tok.Encode(text)
		if err != nil {
			return
		}
		if _, err := tok.Decode(ids); err != nil {
			t.Fatalf("decoding our own ids: %v", err)
		}
	})
}

var (
	fuzzVocabOnce sync.Once
	fuzzVocabs    []*Tokenizer
)

// FuzzEncodeDecode encodes fuzzed text with real vocabularies (SentencePiece and BPE): no panic, and valid
// UTF-8 decodes back to itself.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"Hello world", " this is 🦙.cpp", "<s>\n\n  x", "3333333", "!!!!!!", "\xff\xfe", "нещо на Български"} {
		f.Add(s)
	}
	fuzzVocabOnce.Do(func() {
		for _, n := range []string{"llama-spm", "gpt-2", "deepseek-llm"} {
			fuzzVocabs = append(fuzzVocabs, loadVocab(f, n))
		}
	})
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range fuzzVocabs {
			ids, err := tok.Encode(s)
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			back, err := tok.Decode(ids)
			if err != nil {
				t.Fatal(err)
			}
			if utf8.ValidString(s) && !strings.Contains(s, "▁") && back != s {
				t.Fatalf("%q decoded as %q", s, back)
			}
		}
	})
}
