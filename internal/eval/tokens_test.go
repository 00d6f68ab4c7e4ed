package eval

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The tokens a task reports are every token the model processed: each
// context once (however many choices share it, with the BOS), the
// continuation tokens it scored, and for generation the prompt and the
// tokens it generated; a cached result reports the same cost, and an entry
// counted otherwise (before prompts were counted) is scored again.
func TestTaskTokensCountPromptsScoredAndGeneratedTokens(t *testing.T) {
	// arc.jsonl: two items, contexts "Question: Pick the long one\nAnswer:"
	// (35 bytes) and "Question: Pick the accented one\nAnswer:" (39), each
	// run once with its BOS: 36 + 40; choices " a"/" bbbb" and " éé"/" xxx":
	// 2+5+5+4 bytes, one token per byte in the fake.
	const prompts = 36 + 40
	lm := &fakeLM{ll: func(_, c string) float64 { return -float64(len(c)) }}
	if r := one(t, lm, TaskSpec{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl"}); r.Tokens != prompts+16 {
		t.Fatalf("multiple choice: %d tokens, want %d", r.Tokens, prompts+16)
	}
	lm.tokens = func(string) int { return 3 }
	if r := one(t, lm, TaskSpec{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl"}); r.Tokens != prompts+12 {
		t.Fatalf("multiple choice at 3 tokens a choice: %d tokens, want %d", r.Tokens, prompts+12)
	}
	// A few-shot prompt is processed too: one shot makes every context longer.
	lm.tokens = nil
	shot := one(t, lm, TaskSpec{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl", Fewshot: 1})
	var want int64 = 16
	last := lm.calls[len(lm.calls)-1]
	seen := map[string]bool{}
	for _, r := range last {
		if !seen[r.Context] {
			seen[r.Context] = true
			want += int64(len(r.Context)) + 1
		}
	}
	if len(seen) != 2 || shot.Tokens != want || shot.Tokens <= prompts+16 {
		t.Fatalf("one shot: %d tokens over %d contexts, want %d (more than %d)", shot.Tokens, len(seen), want, prompts+16)
	}
	// With a prompt counter the engine's own count is used.
	pc := &promptFake{fakeLM: &fakeLM{ll: lm.ll}, perPrompt: 7}
	if r := one(t, pc, TaskSpec{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl"}); r.Tokens != 2*7+16 {
		t.Fatalf("with a prompt counter: %d tokens, want %d", r.Tokens, 2*7+16)
	}

	// Generation: the fake has no tokenizer, so one token per byte of the
	// prompt plus its BOS and of the returned text, at least one per item.
	gen := &fakeLM{gen: func(p string) string {
		if len(p)%2 == 0 {
			return " 7"
		}
		return ""
	}}
	r := one(t, gen, TaskSpec{Name: "gsm8k", Source: "gsm8k", Path: "testdata/gsm8k.jsonl"})
	want = 0
	for _, p := range gen.gens {
		want += int64(len(p)) + 1
		if len(p)%2 == 0 {
			want += 2
		} else {
			want++
		}
	}
	if len(gen.gens) != 3 || r.Tokens != want {
		t.Fatalf("generation: %d tokens over %d prompts, want %d", r.Tokens, len(gen.gens), want)
	}
	counted := &countingFake{fakeLM: gen, per: 5}
	if r := one(t, counted, TaskSpec{Name: "gsm8k", Source: "gsm8k", Path: "testdata/gsm8k.jsonl"}); r.Tokens != 3*(5+1)+15 {
		t.Fatalf("generation with a token counter: %d tokens, want %d", r.Tokens, 3*(5+1)+15)
	}

	dir := t.TempDir()
	suite := Suite{Tasks: []TaskSpec{{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl"}}}
	cache := DirCache(filepath.Join(dir, "cache"))
	opts := Options{Cache: cache, ModelSHA256: modelA}
	lm = &fakeLM{ll: func(_, c string) float64 { return -float64(len(c)) }}
	first, err := Evaluate(context.Background(), lm, suite, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Evaluate(context.Background(), lm, suite, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Tasks[0].Cached || second.Tasks[0].Tokens != first.Tasks[0].Tokens || len(lm.calls) != 1 {
		t.Fatalf("cached: %+v after %+v (%d calls)", second.Tasks[0], first.Tasks[0], len(lm.calls))
	}

	// Mark the cached entry as counted the old way (continuations only).
	files, _ := filepath.Glob(filepath.Join(dir, "cache", "*", "*"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	old := first.Tasks[0]
	old.Tokens, old.Counting = 16, ""
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	k, err := taskKey(suite.Tasks[0], modelA)
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.Put(k, old); err != nil {
		t.Fatal(err)
	}
	third, err := Evaluate(context.Background(), lm, suite, opts)
	if err != nil {
		t.Fatal(err)
	}
	if third.Tasks[0].Cached || third.Tasks[0].Tokens != prompts+16 || len(lm.calls) != 2 {
		t.Fatalf("an entry counted the old way: %+v (%d calls)", third.Tasks[0], len(lm.calls))
	}
	fourth, err := Evaluate(context.Background(), lm, suite, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !fourth.Tasks[0].Cached || fourth.Tasks[0].Tokens != prompts+16 || len(lm.calls) != 2 {
		t.Fatalf("rescored entry cached again: %+v (%d calls)", fourth.Tasks[0], len(lm.calls))
	}
}

// countingFake is a fake LM with a tokenizer: per tokens for any text.
type countingFake struct {
	*fakeLM
	per int
}

func (c *countingFake) CountTokens(string) (int, error) { return c.per, nil }

// promptFake is a fake LM that counts its own prompt tokens.
type promptFake struct {
	*fakeLM
	perPrompt int
}

func (p *promptFake) CountPromptTokens(string) (int, error) { return p.perPrompt, nil }

// taskKey is the cache key Evaluate uses for spec.
func taskKey(spec TaskSpec, model string) (CacheKey, error) {
	spec, _ = spec.withDefaults()
	p, err := prepare(spec)
	if err != nil {
		return CacheKey{}, err
	}
	return CacheKey{Model: model, Task: spec.Name, Version: p.version, N: spec.N, Seed: spec.Seed, Fewshot: spec.Fewshot}, nil
}
