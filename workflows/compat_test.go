package workflows

import (
	"encoding/json"
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
