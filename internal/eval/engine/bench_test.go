package engine

import (
	"context"
	"testing"
	"time"

	"github.com/evomerge/evomerge/internal/eval"
)

// BenchmarkItemsPerSecond scores a 4-choice task (synthetic sequence items
// with 3 few-shot examples, so the shared context is most of each request)
// through the engine's shared-context path and with every pair scored on
// its own. Each iteration runs both, interleaved, so that a machine whose
// load drifts slows both alike; it reports items/s of each and their ratio.
func BenchmarkItemsPerSecond(b *testing.B) {
	suite := eval.Suite{Tasks: []eval.TaskSpec{{
		Name: "sequence", Source: eval.SourceSynthetic, Family: "sequence", N: 32, Fewshot: 3, Seed: 1,
	}}}
	m := FromModel(tiny(b, 1))
	var shared, alone time.Duration
	items := 0
	run := func(lm eval.LM) time.Duration {
		start := time.Now()
		rep, err := eval.Evaluate(context.Background(), lm, suite, eval.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if lm == eval.LM(m) {
			items += rep.Tasks[0].N
		}
		return time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		shared += run(m)
		alone += run(Independent{m})
	}
	b.ReportMetric(float64(items)/shared.Seconds(), "shared-items/s")
	b.ReportMetric(float64(items)/alone.Seconds(), "independent-items/s")
	b.ReportMetric(alone.Seconds()/shared.Seconds(), "speedup")
}
