package workflows

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Renamed fields: the old JSON names (in recorded histories) still read, only
// the new ones are written, and a typo is still an error.
func TestRenamedFieldsReadTheirOldNames(t *testing.T) {
	var m TinyModel
	require.NoError(t, json.Unmarshal([]byte(`{"layers": 2, "dim": 64, "heads": 4, "kv_heads": 2, "ff": 192, "context": 64}`), &m))
	require.Equal(t, 192, m.FFN)
	b, _ := json.Marshal(m)
	require.Contains(t, string(b), `"ffn":192`)
	require.NotContains(t, string(b), `"ff"`)
	require.ErrorContains(t, json.Unmarshal([]byte(`{"ffn": 1, "ff": 2}`), &m), "disagree")
	require.ErrorContains(t, json.Unmarshal([]byte(`{"fnn": 1}`), &m), `unknown field "fnn"`)

	var p FineTuneParams
	require.NoError(t, json.Unmarshal([]byte(`{"method": "full", "lr": 0.001, "steps": 5, "dataset": "addition", "batch": 16, "seed": 1}`), &p))
	require.Equal(t, 16, p.BatchSize)
	b, _ = json.Marshal(p)
	require.Contains(t, string(b), `"batch_size":16`)

	c, err := ParseRunConfig([]byte(`{"name": "old", "init": {"models": ["a", "b"]}, "mutation": {"batch": 4}}`))
	require.NoError(t, err)
	require.Equal(t, 4, c.Mutation.BatchSize)
	_, err = ParseRunConfig([]byte(`{"name": "old", "init": {"models": ["a", "b"]}, "mutation": {"bach": 4}}`))
	require.ErrorContains(t, err, `unknown field "bach"`)
}

func TestPrepareIsIdempotent(t *testing.T) {
	a, err := Prepare(DemoConfig())
	require.NoError(t, err)
	b, err := Prepare(a)
	require.NoError(t, err)
	require.Equal(t, a, b)
	_, err = Prepare(RunConfig{Population: 1})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
}

// A continued lineage keeps its best members by recorded fitness (ties in
// recorded order); other sources are left as they are.
func TestBestOfLineage(t *testing.T) {
	got := bestOfLineage([]InitMember{{Ref: "a", LineageFitness: 0.1}, {Ref: "b", LineageFitness: 0.9},
		{Ref: "c", LineageFitness: 0.5}, {Ref: "d", LineageFitness: 0.9}}, 3)
	var refs []string
	for _, m := range got {
		refs = append(refs, m.Ref)
	}
	require.Equal(t, []string{"b", "d", "c"}, refs)
}

// The fitness and mutation sections before dev/test and data files still
// read, and become the same tasks (names, items, splits) as they were.
func TestOldFitnessAndDatasetsForms(t *testing.T) {
	c, err := ParseRunConfig([]byte(`{"name": "old", "init": {"models": ["a", "b"]},
		"mutation": {"datasets": ["addition", {"path": "store:` + strings.Repeat("0", 64) + `", "weight": 2}]},
		"fitness": {"suite": "synth", "tasks": [{"family": "addition", "items": 16, "weight": 2}], "held_out_items": 40}}`))
	require.NoError(t, err)
	require.Equal(t, []TaskSpec{{Name: "addition", Source: SourceSynthetic, Family: "addition", Split: SplitValidation, N: 16, Weight: 2}}, c.Fitness.Dev)
	require.Equal(t, []TaskSpec{{Name: "addition", Source: SourceSynthetic, Family: "addition", Split: SplitTest, N: 40, Weight: 2}}, c.Fitness.Test)
	require.Empty(t, c.Fitness.Tasks)
	require.Equal(t, []MutationDataset{{Family: "addition", Weight: 1}, {Path: "store:" + strings.Repeat("0", 64), Weight: 2}}, c.Mutation.Datasets)

	var s TaskScore
	require.NoError(t, json.Unmarshal([]byte(`{"family": "addition", "score": 0.5, "items": 32}`), &s))
	require.Equal(t, 32, s.N)
	b, _ := json.Marshal(s)
	require.Contains(t, string(b), `"n":32`)
	var ts TaskSpec
	require.ErrorContains(t, json.Unmarshal([]byte(`{"family": "addition", "n": 3, "items": 4}`), &ts), "disagree")
	require.ErrorContains(t, json.Unmarshal([]byte(`{"famly": "addition"}`), &ts), `unknown field "famly"`)
}
