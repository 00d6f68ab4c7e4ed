package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Every generation, the initial one too, records the population's diversity
// from the run's base, once per generation; fitness spread matches the
// recorded scores.
func TestEvolutionRecordsDiversityPerGeneration(t *testing.T) {
	w := newFakeWorld()
	cfg := testConfig()
	out := runToEnd(t, cfg, w, nil)
	res := out.result
	require.Len(t, res.History, cfg.Generations+1)
	require.Equal(t, cfg.Generations+1, w.count(ActivityDiversity))
	for _, g := range res.History {
		d := g.Diversity
		require.NotNil(t, d, "generation %d", g.Generation)
		require.NotEmpty(t, d.Ancestor)
		require.Equal(t, out.inputs[len(out.inputs)-1].State.Base, d.Ancestor)
		require.GreaterOrEqual(t, d.MaxDistance, d.MeanDistance)
		require.GreaterOrEqual(t, d.MeanDistance, d.MinDistance)
		require.InDelta(t, g.Mean, d.FitnessMean, 1e-12)
		require.InDelta(t, g.Best, d.FitnessMax, 1e-12)
		require.Greater(t, d.FitnessStd, 0.0)
	}
	// The specialists of generation 0 are far apart; selection and merging pull the population together.
	require.Less(t, res.History[len(res.History)-1].Diversity.MeanDistance, res.History[0].Diversity.MeanDistance)
}
