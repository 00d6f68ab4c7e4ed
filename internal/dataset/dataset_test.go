package dataset

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/train"
)

var conv = []Message{
	{Role: "system", Content: "Be brief."},
	{Role: "user", Content: "Hi"},
	{Role: "assistant", Content: "Hello."},
	{Role: "user", Content: "2+2?"},
	{Role: "assistant", Content: "4"},
}

func tmpl(t *testing.T, name, bos, eos string) *ChatTemplate {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "templates", name+".jinja"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewChatTemplate(string(src), bos, eos)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func learned(segs []train.Segment) []string {
	var out []string
	for _, s := range segs {
		if s.Learn {
			out = append(out, s.Text)
		}
	}
	return out
}

func joined(segs []train.Segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.Text)
	}
	return b.String()
}

func TestChatML(t *testing.T) {
	c := tmpl(t, "Qwen-Qwen2-7B-Instruct", "", "<|im_end|>")
	segs, err := c.Segments(conv)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
	if got := joined(segs); got != want {
		t.Fatalf("rendered\n%q\nwant\n%q", got, want)
	}
	if got := learned(segs); !reflect.DeepEqual(got, []string{"Hello.<|im_end|>\n", "4<|im_end|>\n"}) {
		t.Fatalf("learned %q", got)
	}
}

func TestLlama3AndMistral(t *testing.T) {
	c := tmpl(t, "meta-llama-Meta-Llama-3-8B-Instruct", "<|begin_of_text|>", "<|eot_id|>")
	segs, err := c.Segments(conv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(joined(segs), "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>") {
		t.Fatalf("%q", joined(segs))
	}
	if got := learned(segs); !reflect.DeepEqual(got, []string{"Hello.<|eot_id|>", "4<|eot_id|>"}) {
		t.Fatalf("learned %q", got)
	}
	m := tmpl(t, "mistralai-Mistral-7B-Instruct-v0.1", "<s>", "</s>")
	segs, err = m.Segments(conv[1:])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := joined(segs), "<s>[INST] Hi [/INST]Hello.</s>[INST] 2+2? [/INST]4</s>"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if got := learned(segs); !reflect.DeepEqual(got, []string{"Hello.</s>", "4</s>"}) {
		t.Fatalf("learned %q", got)
	}
	// raise_exception reaches the user with the template's message.
	if _, err := m.Segments(conv); err == nil || !strings.Contains(err.Error(), "Conversation roles must alternate") && !strings.Contains(err.Error(), "Only user and assistant roles") {
		t.Fatalf("raise_exception: %v", err)
	}
}

// refused are the real templates whose renders of a conversation's prefixes
// are not prefixes of the whole, so assistant turns cannot be located:
// DeepSeek-R1's generation prompt adds "<think>\n" that the finished turn
// lacks; Mistral Nemo's puts the system prompt into the last user turn.
var refused = map[string]bool{
	"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": true,
	"mistralai-Mistral-Nemo-Instruct-2407":     true,
}

// TestRealTemplates renders a conversation with the chat templates real
// models ship (from llama.cpp's models/templates, rendered by gonja with
// loop, namespace, raise_exception, filters and string methods); the two
// whose layout defeats prefix rendering must be refused with a clear error.
func TestRealTemplates(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "templates", "*.jinja"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jinja")
		t.Run(name, func(t *testing.T) {
			c := tmpl(t, name, "<s>", "</s>")
			msgs := conv
			if strings.Contains(name, "Mistral-7B") || strings.Contains(name, "gemma") {
				msgs = conv[1:] // these templates refuse a system turn
			}
			segs, err := c.Segments(msgs)
			if refused[name] {
				if err == nil || !strings.Contains(err.Error(), "renders the conversation before this turn differently") {
					t.Fatalf("want a refusal, got %v (%q)", err, joined(segs))
				}
				return
			}
			if err != nil {
				t.Fatalf("%v", err)
			}
			l := learned(segs)
			if len(l) != 2 || !strings.Contains(l[0], "Hello.") || !strings.Contains(l[1], "4") {
				t.Fatalf("learned %q of %q", l, joined(segs))
			}
		})
	}
}

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	p := write(t, "d.jsonl", `{"prompt":"Q: 1+1\nA:","completion":" 2"}`+"\n"+`{"text":"plain text"}`+"\n"+
		`{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}]}`+"\n")
	c := tmpl(t, "Qwen-Qwen2-7B-Instruct", "", "<|im_end|>")
	ex, err := Load(p, Options{Template: c})
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 3 || ex[0].Completion != " 2" || ex[1].Text != "plain text" || !reflect.DeepEqual(learned(ex[2].Segments), []string{"Hello.<|im_end|>\n"}) {
		t.Fatalf("%+v", ex)
	}
	// The same chat record from Parquet (Hub layout: list of structs).
	type msg struct {
		Role    string `parquet:"role"`
		Content string `parquet:"content"`
	}
	type row struct {
		Messages []msg `parquet:"messages,list"`
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[row](&b)
	w.Write([]row{{[]msg{{"user", "Hi"}, {"assistant", "Hello."}}}})
	w.Close()
	pq := write(t, "chat.parquet", b.String())
	px, err := Load(pq, Options{Template: c})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(px[0], ex[2]) {
		t.Fatalf("parquet %+v\njsonl %+v", px[0], ex[2])
	}
}

func TestLoadBadInputs(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"prompt":"a","completion":"b"}` + "\n" + `{"instruction":"x","output":"y"}`, "d.jsonl:2: no prompt+completion, text or messages field (the record has instruction, output)"},
		{`{"prompt":"a"}`, "d.jsonl:1: field completion: missing"},
		{`{"text":3}`, "d.jsonl:1: field text: must be a string"},
		{`{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}]}`, "d.jsonl:1: field messages: a chat dataset needs a chat template"},
		{`{"messages":"hi"}`, "d.jsonl:1: field messages: want a list"},
		{"\n\n", "d.jsonl: no usable examples"},
		{`[1,2]`, "d.jsonl:1: not a JSON object"},
	}
	for _, c := range cases {
		_, err := Load(write(t, "d.jsonl", c.body), Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.body, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.jsonl"), Options{}); err == nil || !strings.Contains(err.Error(), "none.jsonl") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := NewChatTemplate("{% for %}", "", ""); err == nil {
		t.Error("broken template accepted")
	}
	c, _ := NewChatTemplate(`{% include "/etc/passwd" %}`, "", "")
	if c != nil {
		if _, err := c.Render(conv, false); err == nil {
			t.Error("template read a file")
		}
	}
}

func TestSampleSeededMixture(t *testing.T) {
	mk := func(tag string, n int) []train.Example {
		out := make([]train.Example, n)
		for i := range out {
			out[i] = train.Example{Text: tag}
		}
		return out
	}
	sets := []Weighted{{"a", mk("a", 10), 3}, {"b", mk("b", 5), 1}, {"c", mk("c", 5), 0}}
	s1, err := Sample(7, sets, 4000)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := Sample(7, sets, 4000)
	s3, _ := Sample(8, sets, 4000)
	if !reflect.DeepEqual(s1, s2) || reflect.DeepEqual(s1, s3) {
		t.Fatal("same seed must give the same sample, another seed another one")
	}
	count := map[string]int{}
	for _, e := range s1 {
		count[e.Text]++
	}
	if count["c"] != 0 || count["a"] < 2800 || count["a"] > 3200 {
		t.Fatalf("mixture %v, want about 3000 a, 1000 b, 0 c", count)
	}
	// Without replacement inside a dataset: 10 draws from one set of 10 distinct examples are a permutation.
	distinct := make([]train.Example, 10)
	for i := range distinct {
		distinct[i] = train.Example{Text: string(rune('a' + i))}
	}
	d, _ := Sample(1, []Weighted{{"d", distinct, 1}}, 10)
	seen := map[string]bool{}
	for _, e := range d {
		seen[e.Text] = true
	}
	if len(seen) != 10 {
		t.Fatalf("subset repeats examples: %v", d)
	}
	if _, err := Sample(1, []Weighted{{"e", nil, 1}}, 3); err == nil {
		t.Fatal("empty weighted dataset accepted")
	}
}

func TestTemplateFromGGUF(t *testing.T) {
	src, _ := os.ReadFile(filepath.Join("testdata", "templates", "Qwen-Qwen2-7B-Instruct.jinja"))
	mk := func(kvs []gguf.KV) *gguf.File {
		var b bytes.Buffer
		w, err := gguf.NewWriter(&b, kvs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Read(bytes.NewReader(b.Bytes()), int64(b.Len()))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tokens := gguf.KV{Key: "tokenizer.ggml.tokens", Value: []string{"<s>", "<|im_end|>", "a"}}
	f := mk([]gguf.KV{tokens, {Key: "tokenizer.ggml.eos_token_id", Value: uint32(1)}, {Key: "tokenizer.chat_template", Value: string(src)}})
	c, err := TemplateFromGGUF(f, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.EOS != "<|im_end|>" || c.BOS != "" {
		t.Fatalf("bos %q eos %q", c.BOS, c.EOS)
	}
	bare := mk([]gguf.KV{tokens})
	if _, err := TemplateFromGGUF(bare, ""); err != ErrNoChatTemplate {
		t.Fatalf("no template: %v", err)
	}
	if c, err := TemplateFromGGUF(bare, string(src)); err != nil || c == nil {
		t.Fatalf("override: %v", err)
	}
}
