package llm

import (
	"context"
	"testing"
)

// benchCfg is a fixed tiny config for the speed figures (about 1.7M parameters).
var benchCfg = Config{Vocab: ByteVocabLen, Dim: 128, Layers: 4, Heads: 4, KVHeads: 4, FFN: 384, Context: 256, RopeBase: 10000, NormEps: 1e-5}

func benchModel(b *testing.B) *Model {
	m, err := NewTiny(benchCfg, 1, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

// A 4-choice question: the context once, shared by its four continuations (the engine's path).
func BenchmarkScore4ChoicesShared(b *testing.B) {
	m := benchModel(b)
	pairs := question()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Score(context.Background(), pairs); err != nil {
			b.Fatal(err)
		}
	}
	reportTokens(b, pairs)
}

// The same four pairs scored independently, the context recomputed for each (what a pair-at-a-time scorer does).
func BenchmarkScore4ChoicesIndependent(b *testing.B) {
	m := benchModel(b)
	pairs := question()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range pairs {
			if _, err := m.Score(context.Background(), []Pair{p}); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportTokens(b, pairs)
}

func BenchmarkGenerate(b *testing.B) {
	m := benchModel(b)
	const n = 64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Generate(context.Background(), "Question: what is 12+30?\nAnswer:", GenerateOptions{MaxTokens: n, Temperature: 0.8, Seed: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "gen-tok/s")
}

func question() []Pair {
	ctx := "The following is a question about science. Which gas do plants absorb from the air to make food? Answer:"
	var pairs []Pair
	for _, c := range []string{" oxygen", " carbon dioxide", " nitrogen", " helium"} {
		pairs = append(pairs, Pair{ctx, c})
	}
	return pairs
}

func reportTokens(b *testing.B, pairs []Pair) {
	tokens := 0
	for _, p := range pairs {
		tokens += len(p.Context) + 1 + len(p.Continuation) // byte tokenizer: one token per byte, plus BOS
	}
	b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "scored-tok/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "questions/s")
}
