package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/workflows"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoadYAMLAndJSONGiveTheSameConfig(t *testing.T) {
	y := writeFile(t, "run.yaml", `
name: nightly
seed: 7
population: 6
generations: 3
selection:
  scheme: truncation
  elitism: 1
crossover:
  methods:
    - name: ties
      params:
        density: {min: 0.4, max: 0.6}
    - name: slerp
init:
  demo: {}
budgets:
  wall_time: 2h
`)
	j := writeFile(t, "run.json", `{"name": "nightly", "seed": 7, "population": 6, "generations": 3,
  "selection": {"scheme": "truncation", "elitism": 1},
  "crossover": {"methods": [{"name": "ties", "params": {"density": {"min": 0.4, "max": 0.6}}}, {"name": "slerp"}]},
  "init": {"demo": {}}, "budgets": {"wall_time": "2h"}}`)
	a, err := loadRunConfig(y)
	require.NoError(t, err)
	b, err := loadRunConfig(j)
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.Equal(t, workflows.SchemeTruncation, a.Selection.Scheme)
	require.Equal(t, 5, a.Children)
	require.Equal(t, 0.4, a.Crossover.Methods[0].Params["density"].Min)
	require.NotNil(t, a.Init.Demo, "an empty demo block means: the demo with its defaults")
	require.Equal(t, workflows.DemoConfig().Init.Demo.Model, a.Init.Demo.Model)
}

func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"elitism", "name: x\npopulation: 4\nselection:\n  elitism: 4\ninit:\n  demo: {}\n",
			[]string{"run.yaml:4: selection.elitism: must be less than population (4), got 4"}},
		{"population", "name: x\npopulation: 1\ninit:\n  demo: {}\n",
			[]string{"run.yaml:2: population: must be at least 2, got 1"}},
		{"unknown method", "name: x\ncrossover:\n  methods:\n    - name: ties\n    - name: frankenmerge\ninit:\n  demo: {}\n",
			[]string{"run.yaml:5: crossover.methods[1].name: unknown merge method \"frankenmerge\""}},
		{"empty tasks", "name: x\nfitness:\n  dev: []\ninit:\n  demo: {}\n",
			[]string{"run.yaml:3: fitness.dev: must name at least one task"}},
		{"two problems", "name: x\npopulation: 1\nselection:\n  scheme: lottery\ninit:\n  demo: {}\n",
			[]string{"run.yaml:2: population:", "run.yaml:4: selection.scheme: unknown scheme \"lottery\""}},
		{"typo", "name: x\npopulaton: 8\ninit:\n  demo: {}\n",
			[]string{"run.yaml:2:", `unknown field "populaton"`}},
		{"wrong type", "name: x\npopulation: many\ninit:\n  demo: {}\n",
			[]string{"run.yaml:2: population: got a string value, want int"}},
		{"yaml syntax", "name: x\n  population: [8\n",
			[]string{"run.yaml:"}},
		{"not a mapping", "- a\n- b\n", []string{"run.yaml:1: a run config must be a mapping"}},
		{"empty", "", []string{"run.yaml: empty config"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadRunConfig(writeFile(t, "run.yaml", tc.body))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigFileTooLarge(t *testing.T) {
	p := writeFile(t, "big.json", `{"name": "`+strings.Repeat("x", maxConfigBytes)+`"}`)
	_, err := loadRunConfig(p)
	require.ErrorContains(t, err, "larger than")
}

func TestFieldLineForDefaultedFieldPointsAtParent(t *testing.T) {
	_, err := loadRunConfig(writeFile(t, "run.yaml", "name: x\ninit:\n  models: [a.gguf]\n"))
	require.ErrorContains(t, err, "run.yaml:3: init.models: needs at least 2 models")
}

func TestQuickstartConfigDefaultsAndOverrides(t *testing.T) {
	dir := t.TempDir()
	cfg, err := quickstartConfig(quickstartFlags{dir: dir, generations: 2, population: 4, seed: 9})
	require.NoError(t, err)
	require.Equal(t, 2, cfg.Generations)
	require.Equal(t, 4, cfg.Population)
	require.Equal(t, 2, cfg.Children, "children re-derived from the overridden population")
	require.Equal(t, uint64(9), cfg.Seed)
	require.Equal(t, "path", cfg.Publish.Kind)
	require.Equal(t, filepath.Join(dir, "demo-winner.gguf"), cfg.Publish.Path)

	_, err = quickstartConfig(quickstartFlags{dir: dir, population: 1})
	require.ErrorContains(t, err, "population: must be at least 2")
}

func TestScheduleActionContinuesTheLineage(t *testing.T) {
	cfg, err := loadRunConfig(writeFile(t, "n.yaml", "name: nightly\nlineage: evo-line\ninit:\n  demo: {}\n"))
	require.NoError(t, err)
	got, action, err := scheduleAction(cfg, false)
	require.NoError(t, err)
	require.Equal(t, "evo-line", got.Init.ContinueLineage)
	require.Equal(t, "evo-nightly", action.ID)
	require.Equal(t, workflows.WorkflowEvolution, action.Workflow)
	in := action.Args[0].(workflows.EvolutionInput)
	require.Equal(t, "evo-line", in.Init.ContinueLineage)
	require.NotNil(t, in.Init.Demo, "the first firing falls back to the demo population")

	got, _, err = scheduleAction(cfg, true)
	require.NoError(t, err)
	require.Empty(t, got.Init.ContinueLineage)

	_, err = scheduleSpec("", 0)
	require.ErrorContains(t, err, "--cron")
	_, err = scheduleSpec("0 2 * *", 0)
	require.ErrorContains(t, err, "5 fields")
	s, err := scheduleSpec("0 2 * * *", 0)
	require.NoError(t, err)
	require.Equal(t, "cron 0 2 * * *", describeSpec(s))
}

// A JSON config's errors name the line and the column: its syntax by encoding/json's offset, its fields
// by their keys' positions.
func TestJSONConfigErrorsNameLineAndColumn(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"{\n  \"name\": \"x\",\n  \"population\": 4,,\n  \"init\": {\"demo\": {}}\n}", "run.json:3:19: invalid character ','"},
		{"{\n  \"name\": \"x\",\n  \"population\": 1,\n  \"init\": {\"demo\": {}}\n}", "run.json:3:3: population: must be at least 2, got 1"},
		{"{\"name\": \"x\", \"init\": {\"demo\": {}}, \"population\": \"many\"}", "run.json:1:37: population: got a string value, want int"},
		{"{\"name\": \"x\",\n \"init\": {\"demo\": {}, \"modles\": []}}", `run.json:2:23: json: unknown field "modles"`},
	} {
		_, err := loadRunConfig(writeFile(t, "run.json", tc.body))
		require.ErrorContains(t, err, tc.want)
	}
}
