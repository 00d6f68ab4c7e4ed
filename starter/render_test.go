package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/workflows"
)

func TestProgressBar(t *testing.T) {
	require.Equal(t, "[█████░░░░░]", progressBar(1, 2, 10))
	require.Equal(t, "[██████████]", progressBar(9, 3, 10), "clamped")
	require.Equal(t, "[··········]", progressBar(0, 0, 10))
}

func TestStatusLine(t *testing.T) {
	s := workflows.Status{Run: "demo", Generation: 3, Generations: 6, Phase: "breeding generation 3",
		ChildrenDone: 2, ChildrenTotal: 6, Best: &workflows.Node{ID: 12, Fitness: 0.73456}}
	line := statusLine(s)
	require.Contains(t, line, "demo · generation 3/6 · children 2/6 [██████░░░░░░░░░░░░░░]")
	require.Contains(t, line, "best #12 0.7346")
	require.NotContains(t, line, "tokens")
	s.TrainTokens, s.ScoredTokens, s.BudgetTokens = 3000, 2500, 9000
	require.Contains(t, statusLine(s), "tokens 5500/9000 (3000 trained + 2500 scored)")
}

func TestPrintResultSaysWhetherTheWinnerBeatTheInitialBest(t *testing.T) {
	res := workflows.RunResult{
		Run: "demo", StopReason: "completed 2 generations", Published: "/tmp/w.gguf",
		Winner: workflows.Node{ID: 9, Fitness: 0.61, Ref: "sha256:ab", Op: "merge ties(d=0.5) #1 × #2"},
		History: []workflows.GenStats{
			{Generation: 0, Best: 0.5, BestID: 1, Mean: 0.4, BestInitial: 0.5},
			{Generation: 1, Best: 0.55, BestID: 7, Mean: 0.45, BestInitial: 0.5, Children: 6, Dropped: 1},
			{Generation: 2, Best: 0.61, BestID: 9, Mean: 0.5, BestInitial: 0.5, Children: 6},
		},
		HeldOut:     workflows.HeldOut{Winner: 0.58, InitialBest: 0.49, InitialID: 1, Beat: true},
		TrainTokens: 4000, ScoredTokens: 4900, BudgetTokens: 9000, HeldOutTokens: 800, Report: "/store/reports/ab.html",
	}
	var b bytes.Buffer
	printResult(&b, res, "http://localhost:8233/namespaces/default/workflows/x")
	out := b.String()
	require.Contains(t, out, "the winner BEATS the best initial model")
	require.Contains(t, out, "winner published at: /tmp/w.gguf")
	require.Contains(t, out, "web UI: http://localhost:8233/namespaces/default/workflows/x")
	require.Contains(t, out, "compute: 4000 training + 4900 dev-scored tokens of a budget of 9000; 800 held-out tokens")
	require.Contains(t, out, "report: /store/reports/ab.html")
	require.Equal(t, 4, strings.Count(out, "\n    ")+strings.Count(out, "\n  gen"), out) // header + 3 rows

	res.HeldOut.Beat = false
	b.Reset()
	printResult(&b, res, "")
	require.Contains(t, b.String(), "did NOT beat")
}

func TestPrintAncestry(t *testing.T) {
	lineage := []workflows.Node{
		{ID: 0, Op: "fine-tune on addition"}, {ID: 1, Op: "fine-tune on sequence"},
		{ID: 2, Generation: 1, Parents: []int{0, 1}, Op: "merge ties #0 × #1"},
		{ID: 3, Generation: 2, Parents: []int{2, 0}, Op: "merge slerp #2 × #0"},
	}
	var b bytes.Buffer
	printAncestry(&b, lineage, 3)
	out := b.String()
	require.Contains(t, out, "  #3 gen 2")
	require.Contains(t, out, "    #2 gen 1")
	require.Contains(t, out, "      #0 gen 0")
	require.Contains(t, out, "(see above)", "a shared ancestor is printed once")
}

func TestCommandLineErrors(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"start"}, &out, &errb)
	require.ErrorIs(t, err, errUsage)
	err = run(t.Context(), []string{"frobnicate"}, &out, &errb)
	require.ErrorIs(t, err, errUsage)
	require.Contains(t, errb.String(), `unknown command "frobnicate"`)
	err = run(t.Context(), []string{"stop"}, &out, &errb)
	require.ErrorContains(t, err, "exactly one run (workflow) id")
	// A bad config fails before any connection is tried (no server runs here).
	p := writeFile(t, "bad.yaml", "name: x\npopulation: 1\ninit: {demo: {}}\n")
	err = run(t.Context(), []string{"start", "-f", p, "--address", "127.0.0.1:1"}, &out, &errb)
	require.ErrorContains(t, err, "bad.yaml:2: population: must be at least 2")
}

func TestCompactDetails(t *testing.T) {
	var v any
	require.NoError(t, json.Unmarshal([]byte(`{"phase":"specialist","member":3,"step":40,"steps":60,"loss":1.23456,"checkpoint":"checkpoints/abcdefabcdefabcdefabcdefabcdef.bin"}`), &v))
	require.Equal(t, "loss=1.235 member=3 phase=specialist step=40 steps=60", compactDetails(v))
	require.Equal(t, "3", compactDetails(float64(3)))
}

func TestGenerationLine(t *testing.T) {
	g := workflows.GenStats{Generation: 2, Best: 0.5, BestID: 7, Mean: 0.4, BestInitial: 0.45, Children: 6, Dropped: 1}
	require.Equal(t, "generation 2: best #7 0.5000, mean 0.4000 (best initial 0.4500), 6 children, 1 dropped; top: #7 0.5000",
		generationLine(g, "#7 0.5000"))
}

func TestGenerationLineWithDiversity(t *testing.T) {
	g := workflows.GenStats{Generation: 1, Best: 0.5, BestID: 7, Mean: 0.4, BestInitial: 0.45, Children: 6,
		Diversity: &workflows.GenDiversity{MeanDistance: 0.42, MinDistance: 0.1, MaxDistance: 0.9, FitnessStd: 0.03}}
	require.Equal(t, "generation 1: best #7 0.5000, mean 0.4000 (best initial 0.4500), 6 children, 0 dropped, diversity 0.4200 (pairs 0.1000–0.9000), fitness σ 0.0300",
		generationLine(g, ""))
	var b strings.Builder
	printHistory(&b, []workflows.GenStats{g})
	require.Contains(t, b.String(), "   0.4200     0.0300")
	require.Contains(t, b.String(), "from the population's centroid")
}
