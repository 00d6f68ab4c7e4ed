package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/internal/atomicfile"
	"github.com/evomerge/evomerge/internal/report"
	"github.com/evomerge/evomerge/workflows"
	"io"
)

// runReport converts a finished run's result and lineage into the HTML
// report's plain data (activities.RunReportData, shared with the
// WriteReport activity).
func runReport(res workflows.RunResult, lineage []workflows.Node, uiURL string) report.Run {
	return activities.RunReportData(res, lineage, uiURL)
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
