package eval

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The tokens a task reports are the continuation tokens the model scored
// and the tokens it generated; a cached result reports the same cost, and an
// entry without a cost (recorded before token counts) is scored again.
func TestTaskTokensCountScoredAndGeneratedTokens(t *testing.T) {
	// arc.jsonl: two items, choices " a"/" bbbb" and " éé"/" xxx": 2+5+5+4 bytes,
	// one token per byte in the fake.
	lm := &fakeLM{ll: func(_, c string) float64 { return -float64(len(c)) }}
	if r := one(t, lm, TaskSpec{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl"}); r.Tokens != 16 {
		t.Fatalf("multiple choice: %d tokens, want 16", r.Tokens)
	}
	lm.tokens = func(string) int { return 3 }
	if r := one(t, lm, TaskSpec{Name: "arc", Source: "arc", Path: "testdata/arc.jsonl"}); r.Tokens != 12 {
		t.Fatalf("multiple choice at 3 tokens a choice: %d tokens, want 12", r.Tokens)
	}

	// Generation: the fake has no tokenizer, so one token per byte of the
	// returned text, at least one per item.
	gen := &fakeLM{gen: func(p string) string {
		if len(p)%2 == 0 {
			return " 7"
		}
		return ""
	}}
	r := one(t, gen, TaskSpec{Name: "gsm8k", Source: "gsm8k", Path: "testdata/gsm8k.jsonl"})
	want := int64(0)
	for _, p := range gen.gens {
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
	if r := one(t, counted, TaskSpec{Name: "gsm8k", Source: "gsm8k", Path: "testdata/gsm8k.jsonl"}); r.Tokens != 15 {
		t.Fatalf("generation with a token counter: %d tokens, want 15", r.Tokens)
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

	// Strip the cost from the cached entry, as an entry from before token counts has none.
	files, _ := filepath.Glob(filepath.Join(dir, "cache", "*", "*"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	old := first.Tasks[0]
	old.Tokens = 0
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
	if third.Tasks[0].Cached || third.Tasks[0].Tokens != 16 || len(lm.calls) != 2 {
		t.Fatalf("an entry without a cost: %+v (%d calls)", third.Tasks[0], len(lm.calls))
	}
}

// countingFake is a fake LM with a tokenizer: per tokens for any text.
type countingFake struct {
	*fakeLM
	per int
}

func (c *countingFake) CountTokens(string) (int, error) { return c.per, nil }

// taskKey is the cache key Evaluate uses for spec.
func taskKey(spec TaskSpec, model string) (CacheKey, error) {
	spec, _ = spec.withDefaults()
	p, err := prepare(spec)
	if err != nil {
		return CacheKey{}, err
	}
	return CacheKey{Model: model, Task: spec.Name, Version: p.version, N: spec.N, Seed: spec.Seed, Fewshot: spec.Fewshot}, nil
}
