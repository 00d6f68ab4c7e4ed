package tokenizer

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// tinySPM is a small SentencePiece vocabulary: control <s> </s>, unknown <unk>, a user-defined <|user|>,
// byte tokens and a few pieces.
func tinySPM(extra map[string]any) map[string]any {
	tokens := []string{"<unk>", "<s>", "</s>", "<|user|>"}
	types := []int32{TypeUnknown, TypeControl, TypeControl, TypeUserDefined}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, "<0x"+strings.ToUpper(hex2(b))+">")
		types = append(types, TypeByte)
	}
	for _, p := range []string{"▁", "h", "i", "▁h", "▁hi", "s", "<", ">", "/"} {
		tokens = append(tokens, p)
		types = append(types, TypeNormal)
	}
	scores := make([]float32, len(tokens))
	for i := range scores {
		scores[i] = -float32(i)
	}
	m := map[string]any{
		"tokenizer.ggml.model":      "llama",
		"tokenizer.ggml.tokens":     tokens,
		"tokenizer.ggml.scores":     scores,
		"tokenizer.ggml.token_type": types,
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func hex2(b int) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func TestControlTextStaysText(t *testing.T) {
	tok, err := New(FromMap(tinySPM(nil)))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode("<s>hi")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id == 1 {
			t.Fatalf("<s> in the text became BOS: %v", ids)
		}
	}
	// A user-defined token is matched as llama.cpp does with parse_special = false, and the text after it
	// gets the dummy-space prefix again.
	ids, _ = tok.Encode("hi<|user|>hi")
	hi := tok.ids["▁hi"]
	if want := []int32{hi, 3, hi}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
	if back, _ := tok.Decode(ids); back != "hi<|user|> hi" {
		t.Fatalf("decoded %q", back)
	}
}

func TestAddBOSAndEOS(t *testing.T) {
	for _, c := range []struct {
		meta     map[string]any
		bos, eos bool
	}{
		{tinySPM(nil), true, false}, // SentencePiece default
		{tinySPM(map[string]any{"tokenizer.ggml.add_bos_token": false, "tokenizer.ggml.add_eos_token": true}), false, true},
	} {
		tok, err := New(FromMap(c.meta))
		if err != nil {
			t.Fatal(err)
		}
		if tok.AddBOS() != c.bos || tok.AddEOS() != c.eos {
			t.Fatalf("add_bos %v add_eos %v, want %v %v", tok.AddBOS(), tok.AddEOS(), c.bos, c.eos)
		}
		p, _ := tok.EncodePrompt("hi")
		if (p[0] == 1) != c.bos || (p[len(p)-1] == 2) != c.eos {
			t.Fatalf("prompt %v", p)
		}
	}
	// BPE: no BOS unless the pre-tokenizer type or the file asks (llama.cpp's defaults).
	for pre, want := range map[string]bool{"gpt-2": false, "qwen2": false, "llama-bpe": true, "tekken": true} {
		tok, err := New(FromMap(tinyBPE(pre, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if tok.AddBOS() != want {
			t.Errorf("pre %s: add_bos %v, want %v", pre, tok.AddBOS(), want)
		}
	}
	// add_space_prefix = false drops the dummy space.
	tok, _ := New(FromMap(tinySPM(map[string]any{"tokenizer.ggml.add_space_prefix": false})))
	if ids, _ := tok.Encode("hi"); !reflect.DeepEqual(ids, []int32{tok.ids["h"], tok.ids["i"]}) {
		t.Fatalf("without space prefix: %v", ids)
	}
}

// tinyBPE is a byte-level BPE vocabulary: the 256 byte characters, "hi", "Ġhi" and <|endoftext|>.
func tinyBPE(pre string, extra map[string]any) map[string]any {
	var tokens []string
	for b := 0; b < 256; b++ {
		tokens = append(tokens, byteToText[b])
	}
	tokens = append(tokens, "hi", "Ġh", "Ġhi", "<|endoftext|>")
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = TypeNormal
	}
	types[len(types)-1] = TypeControl
	m := map[string]any{
		"tokenizer.ggml.model":        "gpt2",
		"tokenizer.ggml.pre":          pre,
		"tokenizer.ggml.tokens":       tokens,
		"tokenizer.ggml.token_type":   types,
		"tokenizer.ggml.merges":       []string{"h i", "Ġ h", "Ġh i"},
		"tokenizer.ggml.bos_token_id": uint32(len(tokens) - 1),
		"tokenizer.ggml.eos_token_id": uint32(len(tokens) - 1),
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		meta map[string]any
		want string
	}{
		{tinySPM(map[string]any{"tokenizer.ggml.model": "bert"}), `tokenizer.ggml.model = "bert" is not supported`},
		{tinySPM(map[string]any{"tokenizer.ggml.model": "t5"}), `tokenizer.ggml.model = "t5" is not supported`},
		{tinySPM(map[string]any{"tokenizer.ggml.model": "rwkv"}), `tokenizer.ggml.model = "rwkv" is not supported`},
		{tinySPM(map[string]any{"tokenizer.ggml.model": "no_vocab"}), `tokenizer.ggml.model = "no_vocab" is not supported`},
		{tinyBPE("foo", nil), `tokenizer.ggml.pre = "foo" is not supported`},
		{tinyBPE("gpt-2", map[string]any{"tokenizer.ggml.merges": []string{"h i", "x yz"}}), `tokenizer.ggml.merges[1] = "x yz" refers to a piece that is not a token`},
		{tinyBPE("gpt-2", map[string]any{"tokenizer.ggml.merges": []string{"hi"}}), `tokenizer.ggml.merges[0] = "hi" is not two pieces`},
		{tinyBPE("gpt-2", map[string]any{"tokenizer.ggml.merges": nil}), `tokenizer.ggml.merges is <nil>`},
		{tinySPM(map[string]any{"tokenizer.ggml.scores": []float32{1}}), `tokenizer.ggml.scores must be 269 float32 values (got 1 float32 values)`},
		{tinySPM(map[string]any{"tokenizer.ggml.token_type": []string{"x"}}), `tokenizer.ggml.token_type must be 269 int32 values`},
		{tinySPM(map[string]any{"tokenizer.ggml.tokens": []string{}}), `tokenizer.ggml.tokens has 0 tokens`},
		{tinySPM(map[string]any{"tokenizer.ggml.tokens": "x"}), `tokenizer.ggml.tokens is string`},
		{tinySPM(map[string]any{"tokenizer.ggml.model": uint32(1)}), `tokenizer.ggml.model is uint32, want a string`},
		{tinySPM(map[string]any{"tokenizer.ggml.add_bos_token": "yes"}), `tokenizer.ggml.add_bos_token is string, want a bool`},
		{tinySPM(map[string]any{"tokenizer.ggml.bos_token_id": int32(-1)}), `tokenizer.ggml.bos_token_id is -1`},
	} {
		_, err := New(FromMap(c.meta))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got error %v, want one containing %q", err, c.want)
		}
	}
	delete := tinySPM(nil)
	delete["tokenizer.ggml.model"] = nil
	if _, err := New(func(k string) (any, bool) {
		if k == "tokenizer.ggml.model" {
			return nil, false
		}
		return FromMap(delete)(k)
	}); err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.model is missing") {
		t.Errorf("missing model: %v", err)
	}
	// Every pre value llama.cpp knows compiles.
	for pre := range preRules {
		if _, err := New(FromMap(tinyBPE(pre, nil))); err != nil {
			t.Errorf("pre %s: %v", pre, err)
		}
	}
}

// randomText mixes the characters the pre-tokenizers treat differently.
func randomText(rng *rand.Rand, n int) string {
	alphabet := []string{"a", "Z", "é", "Ж", "中", "ク", "1", "٣", "½", " ", "  ", "\t", "\n", "\r", "\v", "\u00a0", "\u3000",
		"'", "'s", "'LL", "!", "~", "$", "+", "`", "…", "。", "🦙", "\u0301", "\u200b", "-", "(", ")", "/", "\xff"}
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func splitWith(s splitter, text string) []string {
	cpts := decodeCodepoints(text, nil)
	var out []string
	start := 0
	for _, n := range s(cpts, nil) {
		out = append(out, string(cpts[start:start+n]))
		start += n
	}
	return out
}

// The hand-written GPT-2 and Llama 3 splitters and the regex engine agree on their expressions: the engine
// path (used for every other pre-tokenizer) is checked against llama.cpp's own matchers, whose outputs the
// vocabulary cases confirm.
func TestRegexEngineMatchesHandWrittenSplitters(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 1))
	texts := []string{}
	for _, c := range readCases(t, "gpt-2") {
		texts = append(texts, c.text)
	}
	for i := 0; i < 2000; i++ {
		texts = append(texts, randomText(rng, 1+rng.IntN(30)))
	}
	for _, c := range []struct {
		expr string
		hand splitter
	}{{reGPT2, splitGPT2}, {reLlama3, splitLlama3}} {
		re, err := regexSplitter(c.expr)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for _, s := range texts {
			a, b := splitWith(c.hand, s), splitWith(re, s)
			if !reflect.DeepEqual(a, b) && bad < 5 {
				bad++
				t.Errorf("%.20s… on %q:\n hand  %q\n regex %q", c.expr, s, a, b)
			}
		}
	}
}

// Qwen2's expression is Llama 3's with single digits: its split (through the regex engine) must equal
// Llama 3's hand-written split with digit runs cut into digits. (No Qwen2 vocabulary is at hand to check
// ids against llama.cpp's qwen2 cases.)
func TestQwen2SplitIsLlama3WithSingleDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 2))
	texts := []string{}
	for _, c := range readCases(t, "qwen2") {
		texts = append(texts, c.text)
	}
	for i := 0; i < 2000; i++ {
		texts = append(texts, randomText(rng, 1+rng.IntN(30)))
	}
	q, err := newPreTokenizer(preRules["qwen2"])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range texts {
		var want []string
		for _, p := range splitWith(splitLlama3, s) {
			if r := []rune(p); isNumber(flagsOf(r[0])) {
				for _, d := range r {
					want = append(want, string(d))
				}
				continue
			}
			want = append(want, p)
		}
		cpts := decodeCodepoints(s, nil)
		var got []string
		start := 0
		for _, n := range q.split(cpts) {
			got = append(got, string(cpts[start:start+n]))
			start += n
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n qwen2 %q\n want  %q", s, got, want)
		}
	}
}

// Pieces of equal rank merge leftmost first: GPT-2's "!!!!!!" is "!!!!" then "!!" (llama.cpp's answer;
// the pinned Ollama tokenizer gives them the other way round).
func TestEqualRankMergesLeftmostFirst(t *testing.T) {
	tok := loadVocab(t, "gpt-2")
	ids, err := tok.Encode("!!!!!!")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{13896, 3228}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
}
