package eval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const modelA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestDirCacheSkipsScoredTasks(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "arc.jsonl")
	src, _ := os.ReadFile("testdata/arc.jsonl")
	if err := os.WriteFile(data, src, 0o644); err != nil {
		t.Fatal(err)
	}
	suite := Suite{Tasks: []TaskSpec{{Name: "arc", Source: "arc", Path: data}, {Name: "arc2", Source: "arc", Path: data, Weight: 2}}}
	opts := Options{Cache: DirCache(filepath.Join(dir, "cache")), ModelSHA256: modelA}
	ctx := context.Background()

	lm := &fakeLM{ll: func(_, c string) float64 { return -float64(len(c)) }}
	first, err := Evaluate(ctx, lm, suite, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(lm.calls) != 2 || first.Tasks[0].Cached {
		t.Fatalf("first run: %d calls, cached %v", len(lm.calls), first.Tasks[0].Cached)
	}
	lm.calls = nil
	second, err := Evaluate(ctx, lm, suite, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(lm.calls) != 0 || !second.Tasks[0].Cached || second.Tasks[1].Weight != 2 {
		t.Fatalf("second run: %d calls, %+v", len(lm.calls), second.Tasks)
	}
	if first.Fitness != second.Fitness {
		t.Fatalf("fitness %v then %v", first.Fitness, second.Fitness)
	}

	// Every part of the key matters: seed, sample size, few-shot, model,
	// and the data itself (through the version).
	for name, change := range map[string]func(*Suite, *Options){
		"seed":    func(s *Suite, _ *Options) { s.Tasks[0].Seed = 1 },
		"n":       func(s *Suite, _ *Options) { s.Tasks[0].N = 1 },
		"fewshot": func(s *Suite, _ *Options) { s.Tasks[0].Fewshot = 1 },
		"model":   func(_ *Suite, o *Options) { o.ModelSHA256 = strings.Repeat("b", 64) },
		"data": func(*Suite, *Options) {
			os.WriteFile(data, append(src, []byte(`{"question":"new","choices":{"text":["p","q"],"label":["A","B"]},"answerKey":"A"}`+"\n")...), 0o644)
		},
	} {
		s := Suite{Tasks: []TaskSpec{suite.Tasks[0]}}
		o := opts
		change(&s, &o)
		lm.calls = nil
		if _, err := Evaluate(ctx, lm, s, o); err != nil {
			t.Fatal(err)
		}
		if len(lm.calls) != 1 {
			t.Errorf("changing %s reused a cached score", name)
		}
		os.WriteFile(data, src, 0o644)
	}

	// No temporary file is left behind.
	filepath.Walk(filepath.Join(dir, "cache"), func(p string, info os.FileInfo, err error) error {
		if strings.Contains(filepath.Base(p), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestDirCacheErrors(t *testing.T) {
	c := DirCache(t.TempDir())
	if _, _, err := c.Get(CacheKey{Model: "../../etc"}); err == nil || !strings.Contains(err.Error(), "not a lowercase hex sha256") {
		t.Fatalf("err = %v", err)
	}
	key := CacheKey{Model: modelA, Task: "t", Version: "v"}
	if _, ok, err := c.Get(key); ok || err != nil {
		t.Fatalf("empty cache: %v %v", ok, err)
	}
	if err := c.Put(key, TaskResult{Name: "t", Score: 0.25}); err != nil {
		t.Fatal(err)
	}
	r, ok, err := c.Get(key)
	if !ok || err != nil || r.Score != 0.25 {
		t.Fatalf("%+v %v %v", r, ok, err)
	}
	p, _ := c.(*dirCache).path(key)
	os.WriteFile(p, []byte("{not json"), 0o644)
	if _, _, err := c.Get(key); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("corrupt entry: err = %v", err)
	}
	_, err = Evaluate(context.Background(), &fakeLM{}, Suite{Tasks: []TaskSpec{{Name: "a", Source: "arc", Path: "testdata/arc.jsonl"}}},
		Options{Cache: c, ModelSHA256: "sha256:XYZ"})
	if err == nil || !strings.Contains(err.Error(), "model hash") {
		t.Fatalf("bad model hash: err = %v", err)
	}
}
