package workflows_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/merge"
	"github.com/evomerge/evomerge/workflows"
)

// Every genome the workflow samples must be a spec internal/merge accepts,
// for every method the workflow knows, with and without per-model ranges.
func TestSampledGenomesAreValidMergeSpecs(t *testing.T) {
	for name := range workflows.Methods {
		cfg := workflows.DemoConfig()
		cfg.Crossover.Methods = []workflows.CrossoverMethod{{Name: name}}
		cfg = cfg.WithDefaults()
		require.NoError(t, cfg.Validate(), name)
		rng := workflows.NewRNG(9)
		base := fmt.Sprintf("sha256:%064x", 99)
		for i := 0; i < 20; i++ {
			parents := []string{fmt.Sprintf("sha256:%064x", i), fmt.Sprintf("sha256:%064x", i+100)}
			inputs, g := workflows.SampleGenome(cfg, rng, parents, base)
			b, err := json.Marshal(g)
			require.NoError(t, err)
			var spec merge.Spec
			require.NoError(t, json.Unmarshal(b, &spec))
			require.NoError(t, spec.Validate(len(inputs)), "%s genome %s", name, b)
		}
	}
	for _, name := range merge.Methods() {
		if _, ok := workflows.Methods[name]; !ok {
			t.Logf("merge method %s is not sampled by the workflow", name)
		}
	}
}
