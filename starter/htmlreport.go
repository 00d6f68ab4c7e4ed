package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/evomerge/evomerge/internal/atomicfile"
	"github.com/evomerge/evomerge/internal/report"
	"github.com/evomerge/evomerge/workflows"
	"io"
)

// runReport converts a finished run's result and lineage into the HTML
// report's plain data.
func runReport(res workflows.RunResult, lineage []workflows.Node, uiURL string) report.Run {
	r := report.Run{Name: res.Run, StopReason: res.StopReason, Published: res.Published, UIURL: uiURL, WinnerID: res.Winner.ID}
	for _, g := range res.History {
		row := report.Generation{Generation: g.Generation, Best: g.Best, BestID: g.BestID, Mean: g.Mean, Children: g.Children, Dropped: g.Dropped}
		if d := g.Diversity; d != nil {
			row.Diversity = &report.Diversity{MeanDistance: d.MeanDistance, MinDistance: d.MinDistance, MaxDistance: d.MaxDistance,
				FitnessStd: d.FitnessStd, FitnessMin: d.FitnessMin, FitnessMax: d.FitnessMax}
			r.Ancestor = ancestorText(d.Ancestor)
		}
		r.Generations = append(r.Generations, row)
	}
	h := res.HeldOut
	r.HeldOut = &report.HeldOut{Winner: h.Winner, InitialBest: h.InitialBest, InitialID: h.InitialID}
	for _, n := range lineage {
		r.Lineage = append(r.Lineage, report.Node{ID: n.ID, Generation: n.Generation, Parents: n.Parents, Op: n.Op, Fitness: n.Fitness, Scored: n.Scored, Status: n.Status})
	}
	return r
}

// writeRunReport writes the run's HTML report to path atomically.
func writeRunReport(path string, r report.Run) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("--html %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", fmt.Errorf("--html %s: %w", path, err)
	}
	if _, err := atomicfile.Write(abs, func(w io.Writer) error { return report.RenderRun(w, r) }); err != nil {
		return "", fmt.Errorf("--html %s: %w", path, err)
	}
	return abs, nil
}
