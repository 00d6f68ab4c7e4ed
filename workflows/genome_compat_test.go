package workflows_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/merge"
	"github.com/evomerge/evomerge/workflows"
)

func ref(i int) string { return fmt.Sprintf("sha256:%064x", i) }

// sampledSpec is a genome the workflow samples for method name, as the
// engine's spec (through JSON here: the activities' field-by-field conversion
// is tested against this in activities/convert_test.go), and its inputs.
func sampledSpec(t *testing.T, name string, i int) ([]string, merge.Spec) {
	cfg := workflows.DemoConfig()
	cfg.Crossover.Methods = []workflows.CrossoverMethod{{Name: name}}
	cfg, err := workflows.Prepare(cfg)
	require.NoError(t, err, name)
	rng := workflows.NewRNG(uint64(9 + i))
	inputs, g := workflows.SampleGenome(cfg, rng, []string{ref(i), ref(i + 100)}, ref(99))
	b, err := json.Marshal(g)
	require.NoError(t, err)
	var spec merge.Spec
	require.NoError(t, json.Unmarshal(b, &spec))
	return inputs, spec
}

// Every genome the workflow samples must be a spec internal/merge accepts,
// for every method the workflow knows, with and without per-model ranges.
func TestSampledGenomesAreValidMergeSpecs(t *testing.T) {
	for name := range workflows.Methods {
		for i := 0; i < 20; i++ {
			inputs, spec := sampledSpec(t, name, i)
			require.NoError(t, spec.Validate(len(inputs)), "%s genome %+v", name, spec)
		}
	}
}

// The engine's method table is the source of truth: the workflow's sampling
// table may name only methods and parameters the engine accepts, in the
// class (global or per model) the engine reads them, and must agree with it
// about needing a base and the number of parents.
func TestMethodTableAgreesWithTheEngine(t *testing.T) {
	engine := merge.Methods()
	for name, info := range workflows.Methods {
		require.Contains(t, engine, name, "the workflow samples a method the engine does not have")
		inputs, spec := sampledSpec(t, name, 0)
		require.NoError(t, spec.Validate(len(inputs)), name)

		// Needs a base: the engine refuses the spec without one.
		if info.NeedsBase {
			noBase := spec
			noBase.Base = -1
			require.Error(t, noBase.Validate(len(inputs)), "%s: the workflow says it needs a base, the engine runs without", name)
		} else {
			require.Equal(t, -1, spec.Base, name)
		}
		// Exact parents: one more input is refused.
		if info.ExactParents > 0 {
			more := spec
			more.PerModel = append(slices.Clone(spec.PerModel), map[string]merge.Param{})
			require.Error(t, more.Validate(len(inputs)+1), "%s: the workflow says exactly %d parents", name, info.ExactParents)
		}
		// Every parameter, in its class, with a value valid for every parameter (0.05).
		for k, global := range info.Params {
			s := withParam(spec, k, global, len(inputs))
			require.NoError(t, s.Validate(len(inputs)), "%s: parameter %s (global=%v) is not what the engine accepts", name, k, global)
		}
		// The check can fail: a parameter the engine does not know is refused.
		bogus := withParam(spec, "no_such_param", true, len(inputs))
		require.Error(t, bogus.Validate(len(inputs)), name)
		for _, ot := range workflows.OutTypes {
			s := spec
			s.OutType = ot
			require.NoError(t, s.Validate(len(inputs)), "%s: out type %s", name, ot)
		}
	}
}

// withParam is spec with parameter k set to 0.05, globally or for every model.
func withParam(spec merge.Spec, k string, global bool, n int) merge.Spec {
	s := spec
	if global {
		s.Global = map[string]merge.Param{}
		for kk, v := range spec.Global {
			s.Global[kk] = v
		}
		s.Global[k] = merge.Const(0.05)
		return s
	}
	s.PerModel = make([]map[string]merge.Param, n)
	for i := range n {
		m := map[string]merge.Param{}
		if i < len(spec.PerModel) {
			for kk, v := range spec.PerModel[i] {
				m[kk] = v
			}
		}
		m[k] = merge.Const(0.05)
		s.PerModel[i] = m
	}
	return s
}
