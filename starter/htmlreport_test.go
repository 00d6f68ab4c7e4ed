package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/workflows"
)

func TestRunReportHTML(t *testing.T) {
	div := &workflows.GenDiversity{MeanDistance: 0.6, MinDistance: 0.4, MaxDistance: 0.8, Ancestor: "sha256:ab", FitnessStd: 0.02, FitnessMin: 0.3, FitnessMax: 0.4}
	res := workflows.RunResult{Run: "demo", StopReason: "completed 1 generations", Winner: workflows.Node{ID: 2},
		History: []workflows.GenStats{{Generation: 0, Best: 0.4, Mean: 0.35, Diversity: div}, {Generation: 1, Best: 0.45, BestID: 2, Mean: 0.4, Diversity: div}},
		HeldOut: workflows.HeldOut{Winner: 0.43, InitialBest: 0.38}}
	lineage := []workflows.Node{{ID: 0, Op: "fine-tune on copy"}, {ID: 1, Op: "fine-tune on addition"},
		{ID: 2, Generation: 1, Parents: []int{0, 1}, Op: "merge ties(d=0.5) #0 × #1", Fitness: 0.45, Scored: true}}
	r := runReport(res, lineage, "")
	require.Equal(t, "the run's base sha256:ab", r.Ancestor)
	path, err := writeRunReport(filepath.Join(t.TempDir(), "out", "r.html"), r)
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 5, strings.Count(string(b), "data:image/png;base64,"))
	require.Contains(t, string(b), "merge ties(d=0.5) #0 × #1")
}
