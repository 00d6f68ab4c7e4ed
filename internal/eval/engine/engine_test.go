package engine

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/evomerge/evomerge/internal/eval"
	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/llm"
)

// tinyCfg is a small byte-level llama. Tests and benchmarks run it on one
// thread: ggml's CPU threads busy-wait, and on a shared 2-core machine two
// threads were 800x slower than one.
var tinyCfg = llm.Config{Vocab: llm.ByteVocabLen, Dim: 64, Layers: 2, Heads: 4, KVHeads: 4, FFN: 192, Context: 256, RopeBase: 10000, NormEps: 1e-5}

func tiny(tb testing.TB, seed uint64) *llm.Model {
	m, err := llm.NewTiny(tinyCfg, seed, llm.Options{Threads: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	return m
}

func TestSharedAndIndependentScoresAgree(t *testing.T) {
	lm := FromModel(tiny(t, 1))
	reqs := []eval.Request{
		{Context: "Next: 3 7 11 15\nA:", Continuation: " 19"},
		{Context: "Next: 3 7 11 15\nA:", Continuation: " 20"},
		{Context: "Next: 3 7 11 15\nA:", Continuation: " 155"},
		{Context: "", Continuation: "hello"},
	}
	shared, err := lm.Score(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	alone, err := Independent{lm}.Score(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		if math.Abs(shared[i].LogProb-alone[i].LogProb) > 1e-3 || shared[i].Tokens != alone[i].Tokens {
			t.Fatalf("request %d: shared %+v, alone %+v", i, shared[i], alone[i])
		}
		if shared[i].LogProb >= 0 || shared[i].Tokens != len(reqs[i].Continuation) {
			t.Fatalf("request %d: %+v", i, shared[i])
		}
	}
}

// A prompt costs its tokens and the BOS the engine runs before it (the
// byte-level model adds one): what Evaluate charges for each context.
func TestCountPromptTokensIncludesTheBOS(t *testing.T) {
	m := tiny(t, 1)
	lm := FromModel(m)
	for _, text := range []string{"", "Next: 3 7 11 15\nA:"} {
		ids, err := m.Tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		n, err := lm.CountPromptTokens(text)
		if err != nil || n != len(ids)+1 || !m.Tok.AddBOS() {
			t.Fatalf("%q: %d prompt tokens (%v), %d ids", text, n, err, len(ids))
		}
	}
	// A task's cost counts each context once beside its continuations.
	suite := eval.DemoSuite(synth.Validation, 4, 1)
	rep, err := eval.Evaluate(context.Background(), lm, suite, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Tasks {
		if r.Counting != eval.TokenCounting || r.Tokens < int64(r.N)*3 {
			t.Fatalf("%s: %d tokens for %d items (%q)", r.Name, r.Tokens, r.N, r.Counting)
		}
	}
}

func TestDemoSuiteOnUntrainedModel(t *testing.T) {
	lm := FromModel(tiny(t, 2))
	suite := eval.DemoSuite(synth.Validation, 8, 1)
	a, err := eval.Evaluate(context.Background(), lm, suite, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range a.Tasks {
		if r.N != 8 || r.Score < 0 || r.Score > 1 {
			t.Fatalf("%+v", r)
		}
	}
	b, err := eval.Evaluate(context.Background(), lm, suite, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("two evaluations of one model differ:\n%s\n%s", ja, jb)
	}
}
