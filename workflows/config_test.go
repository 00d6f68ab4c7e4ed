package workflows

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDemoConfigIsValidAndDefaultsAreStable(t *testing.T) {
	c := DemoConfig().WithDefaults()
	require.NoError(t, c.Validate())
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(c.WithDefaults())
	require.JSONEq(t, string(a), string(b), "filling defaults twice changes nothing")
	require.Equal(t, 6, c.Children)
	require.Equal(t, "demo", c.Lineage)
	require.Equal(t, &PublishTarget{Kind: "store", Name: "demo"}, c.Publish)
}

func TestWithDefaultsDoesNotWriteIntoCallersConfig(t *testing.T) {
	c := DemoConfig()
	c.Crossover.Methods = []CrossoverMethod{{Name: "ties"}}
	c.Fitness.Dev = []TaskSpec{{Family: "addition"}}
	c.Mutation.Datasets = []MutationDataset{{Family: "addition"}}
	_ = c.WithDefaults()
	require.Nil(t, c.Crossover.Methods[0].Params)
	require.Zero(t, c.Fitness.Dev[0].N)
	require.Empty(t, c.Fitness.Dev[0].Source)
	require.Zero(t, c.Mutation.Datasets[0].Weight)
}

func TestBadConfigsNameTheField(t *testing.T) {
	cases := []struct {
		name   string
		json   string
		field  string
		detail string
	}{
		{"population below 2", `{"population": 1}`, "population", "at least 2"},
		{"unknown method", `{"crossover": {"methods": [{"name": "ties"}, {"name": "frankenmerge"}]}}`, "crossover.methods[1].name", `unknown merge method "frankenmerge"`},
		{"elitism equals population", `{"population": 4, "selection": {"elitism": 4}}`, "selection.elitism", "less than population (4)"},
		{"empty task list", `{"fitness": {"dev": []}}`, "fitness.dev", "at least one task"},
		{"old and new fitness forms", `{"fitness": {"tasks": [{"family": "addition"}]}}`, "fitness.tasks", "cannot be combined"},
		{"unknown task source", `{"fitness": {"dev": [{"source": "squad", "path": "a.jsonl"}]}}`, "fitness.dev[0].source", `unknown source "squad"`},
		{"file task without path", `{"fitness": {"dev": [{"source": "arc"}]}}`, "fitness.dev[0].path", "must not be empty"},
		{"jsonl without kind", `{"fitness": {"dev": [{"source": "jsonl", "path": "a.jsonl"}]}}`, "fitness.dev[0].kind", "needs its kind"},
		{"bad store ref", `{"fitness": {"dev": [{"source": "arc", "path": "store:abc"}]}}`, "fitness.dev[0].path", "64 lowercase hex"},
		{"dev and test share a file", `{"fitness": {"dev": [{"source": "arc", "path": "arc.parquet", "n": 100}], "test": [{"source": "arc", "path": "arc.parquet", "n": 50}]}}`, "fitness.test[0]", "same items as fitness.dev[0]"},
		{"dev and test share a synthetic split", `{"fitness": {"dev": [{"family": "addition"}], "test": [{"family": "addition", "split": "validation"}]}}`, "fitness.test[0]", "same items as fitness.dev[0]"},
		{"file dev without test", `{"fitness": {"dev": [{"source": "arc", "path": "arc.parquet"}], "test": null}}`, "fitness.test", "held-out"},
		{"duplicate task names", `{"fitness": {"dev": [{"family": "addition"}, {"family": "addition", "split": "train"}]}}`, "fitness.dev[1].name", "unique"},
		{"dataset path and family", `{"mutation": {"datasets": [{"path": "a.jsonl", "family": "addition"}]}}`, "mutation.datasets[0]", "not both"},
		{"dataset bad weight", `{"mutation": {"datasets": [{"path": "a.jsonl", "weight": -1}]}}`, "mutation.datasets[0].weight", "positive"},
		{"empty datasets", `{"mutation": {"datasets": []}}`, "mutation.datasets", "at least one dataset"},
		{"unknown scheme", `{"selection": {"scheme": "lottery"}}`, "selection.scheme", `unknown scheme "lottery"`},
		{"bad lr range", `{"mutation": {"lr": {"min": 0.01, "max": 0.001}}}`, "mutation.lr", "min <= max"},
		{"unknown method param", `{"crossover": {"methods": [{"name": "ties", "params": {"t": {"min": 0, "max": 1}}}]}}`, "crossover.methods[0].params.t", `no parameter "t"`},
		{"slerp with three parents", `{"crossover": {"parents": 3, "methods": [{"name": "slerp"}]}}`, "crossover.methods[0].name", "exactly 2 parents"},
		{"base method without base", `{"init": {"demo": null, "models": ["a.gguf", "b.gguf"]}, "crossover": {"methods": [{"name": "ties"}]}}`, "crossover.methods[0].name", "needs a base model"},
		{"no initial population", `{"init": {"demo": null}}`, "init", "needs models, demo or continue_lineage"},
		{"bad publish kind", `{"publish": {"kind": "ftp"}}`, "publish.kind", `unknown kind "ftp"`},
		{"bad name", `{"name": "../etc"}`, "name", "letters, digits"},
		{"mutation probability", `{"mutation": {"probability": 1.5}}`, "mutation.probability", "[0, 1]"},
		{"heartbeat too short", `{"timeouts": {"heartbeat": "5s"}}`, "timeouts.heartbeat", "at least 10s"},
		{"attempt shorter than heartbeat", `{"timeouts": {"heartbeat": "10m", "merge": "1m"}}`, "timeouts.merge", "at least timeouts.heartbeat (10m0s)"},
		{"bad wall time", `{"budgets": {"wall_time": "soon"}}`, "", `duration "soon"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := json.Marshal(DemoConfig())
			var m map[string]any
			require.NoError(t, json.Unmarshal(base, &m))
			var patch map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.json), &patch))
			mergeJSON(m, patch)
			data, _ := json.Marshal(m)
			_, err := ParseRunConfig(data)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.detail)
			if tc.field == "" {
				return
			}
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "want a *ConfigError, got %T: %v", err, err)
			var fields []string
			for _, f := range ce.Fields {
				fields = append(fields, f.Field)
			}
			require.Contains(t, fields, tc.field, err.Error())
			require.Contains(t, err.Error(), tc.field+": ")
		})
	}
}

func TestParseRunConfigRejectsUnknownFields(t *testing.T) {
	_, err := ParseRunConfig([]byte(`{"name": "x", "populaton": 8, "init": {"models": ["a", "b"]}}`))
	require.ErrorContains(t, err, `unknown field "populaton"`)
	_, err = ParseRunConfig([]byte(`{"name": "x"} {"again": 1}`))
	require.ErrorContains(t, err, "unexpected data")
}

func TestParseRunConfigAcceptsMinimalImport(t *testing.T) {
	c, err := ParseRunConfig([]byte(`{"name": "imp", "init": {"models": ["a.gguf", "b.gguf"]}, "budgets": {"wall_time": "90m"}}`))
	require.NoError(t, err)
	// Without a base model only base-free merge methods are defaulted.
	for _, m := range c.Crossover.Methods {
		require.False(t, Methods[m.Name].NeedsBase, m.Name)
	}
	require.Equal(t, 90*time.Minute, time.Duration(c.Budgets.WallTime))
	b, err := json.Marshal(c.Budgets)
	require.NoError(t, err)
	require.JSONEq(t, `{"wall_time": "1h30m0s"}`, string(b))
}

// mergeJSON overlays patch onto dst (objects merged, everything else replaced).
func mergeJSON(dst, patch map[string]any) {
	for k, v := range patch {
		if pm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeJSON(dm, pm)
				continue
			}
		}
		dst[k] = v
	}
}
