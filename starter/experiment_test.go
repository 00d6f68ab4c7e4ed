package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/workflows"
)

func TestExperimentConfigsRejectedNamingTheField(t *testing.T) {
	good, err := os.ReadFile("../experiments/demo.yaml")
	require.NoError(t, err)
	e, err := parseExperiment("demo.yaml", good)
	require.NoError(t, err)
	require.Len(t, e.Seeds, 5)
	require.Equal(t, workflows.DefaultArms, e.Arms)

	for want, text := range map[string]string{
		"demo.yaml:7: seeds: needs at least 2 seeds":                 strings.Replace(string(good), "seeds: 5", "seeds: 1", 1),
		`demo.yaml:6: arms[2]: unknown arm "merge_only_please"`:      strings.Replace(string(good), "merge_only,", "merge_only_please,", 1),
		"budget.tokens: 1000 is too small for one generation":        strings.Replace(string(good), "tokens: 1200000", "tokens: 1000", 1),
		"budget.tokens: must be positive":                            strings.Replace(string(good), "tokens: 1200000", "tokens: 0", 1),
		`unknown field "budgets"`:                                    strings.Replace(string(good), "budget:", "budgets:", 1),
		"base.selection.tournament_size: must be at most population": string(good) + "  selection: {tournament_size: 30}\n",
	} {
		_, err := parseExperiment("demo.yaml", []byte(text))
		require.ErrorContains(t, err, want)
	}
}

func TestExperimentTableAndReport(t *testing.T) {
	res := workflows.ExperimentResult{Name: "x", Arms: []string{"evomerge", "finetune_only"}, Seeds: []uint64{1, 2, 3}, BudgetTokens: 1000}
	scores := map[string][]float64{"evomerge": {0.5, 0.6, 0.7}, "finetune_only": {0.3, 0.35, 0.4}}
	for _, arm := range res.Arms {
		for i, s := range res.Seeds {
			res.Children = append(res.Children, workflows.ChildOutcome{Arm: arm, Seed: s, Done: true, HeldOut: scores[arm][i],
				TrainTokens: 600, ScoredTokens: 390, Generations: 2,
				History: []workflows.GenStats{{Best: 0.3}, {Best: 0.4 + 0.01*float64(i)}, {Best: 0.5}}})
		}
	}
	res.Children = append(res.Children, workflows.ChildOutcome{Arm: "evomerge", Seed: 4, Error: "boom"})
	tb, err := experimentTable(res)
	require.NoError(t, err)
	var b bytes.Buffer
	printExperiment(&b, res, tb)
	out := b.String()
	for _, want := range []string{"evomerge", "0.6000", "[+0.3516, +0.8484]", "600", "390",
		"evomerge         - finetune_only    +0.2500", "distinguishable", "verdict: evomerge won"} {
		require.Contains(t, out, want)
	}
	html := filepath.Join(t.TempDir(), "r.html")
	require.NoError(t, writeExperimentHTML(html, res, tb))
	data, err := os.ReadFile(html)
	require.NoError(t, err)
	require.Contains(t, string(data), "data:image/png;base64,")
	rep := experimentReport(res, tb)
	require.Len(t, rep.Arms[0].BestCurve, 3, "a band per generation the seeds reached")
	require.Equal(t, int64(1800), rep.Arms[0].TrainTokens)
}
