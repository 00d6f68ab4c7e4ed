package engine

import (
	"context"
	"testing"

	"github.com/evomerge/evomerge/internal/eval"
)

// BenchmarkItemsPerSecond scores a 4-choice task (synthetic sequence items
// with 3 few-shot examples, so the shared context is most of each request)
// through the engine's shared-context path and with every pair scored on
// its own. Compare the items/s of the two sub-benchmarks.
func BenchmarkItemsPerSecond(b *testing.B) {
	suite := eval.Suite{Tasks: []eval.TaskSpec{{
		Name: "sequence", Source: eval.SourceSynthetic, Family: "sequence", N: 16, Fewshot: 3, Seed: 1,
	}}}
	for _, c := range []struct {
		name string
		lm   func(*Model) eval.LM
	}{
		{"shared", func(m *Model) eval.LM { return m }},
		{"independent", func(m *Model) eval.LM { return Independent{m} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			lm := c.lm(FromModel(tiny(b, 1)))
			items := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rep, err := eval.Evaluate(context.Background(), lm, suite, eval.Options{})
				if err != nil {
					b.Fatal(err)
				}
				items += rep.Tasks[0].N
			}
			b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
