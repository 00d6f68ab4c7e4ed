package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/evomerge/evomerge/workflows"
)

// progressBar draws done/total as a fixed-width bar.
func progressBar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat("·", width) + "]"
	}
	done = max(0, min(done, total))
	fill := done * width / total
	return "[" + strings.Repeat("█", fill) + strings.Repeat("░", width-fill) + "]"
}

// statusLine is one line of live progress.
func statusLine(s workflows.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s · generation %d/%d", s.Run, s.Generation, s.Generations)
	if s.ChildrenTotal > 0 {
		fmt.Fprintf(&b, " · children %d/%d %s", s.ChildrenDone, s.ChildrenTotal, progressBar(s.ChildrenDone, s.ChildrenTotal, 20))
	} else {
		fmt.Fprintf(&b, " %s", progressBar(s.Generation, s.Generations, 20))
	}
	if s.Phase != "" {
		fmt.Fprintf(&b, " · %s", s.Phase)
	}
	if s.Best != nil {
		fmt.Fprintf(&b, " · best #%d %.4f", s.Best.ID, s.Best.Fitness)
	}
	if s.BudgetTokens > 0 {
		fmt.Fprintf(&b, " · tokens %d/%d (%d trained + %d scored)", s.TrainTokens+s.ScoredTokens, s.BudgetTokens, s.TrainTokens, s.ScoredTokens)
	}
	if s.Stopping {
		fmt.Fprintf(&b, " · stopping: %s", s.StopReason)
	}
	return b.String()
}

// printLeaderboard prints the top n members.
func printLeaderboard(w io.Writer, board []workflows.Node, n int) {
	fmt.Fprintln(w, "  rank  id     fitness  gen  made by")
	for i, m := range board {
		if i >= n {
			fmt.Fprintf(w, "  … %d more\n", len(board)-n)
			break
		}
		fmt.Fprintf(w, "  %4d  #%-4d  %.4f  %3d  %s\n", i+1, m.ID, m.Fitness, m.Generation, truncate(m.Op, 70))
	}
}

// printHistory prints the per-generation table.
func printHistory(w io.Writer, hist []workflows.GenStats) {
	fmt.Fprintln(w, "  gen    best  (id)     mean  best initial  children  dropped  diversity  fitness σ")
	for _, g := range hist {
		kids, dropped := "-", "-"
		if g.Generation > 0 {
			kids, dropped = fmt.Sprint(g.Children), fmt.Sprint(g.Dropped)
		}
		div, std := "-", "-"
		if d := g.Diversity; d != nil {
			div, std = fmt.Sprintf("%.4f", d.MeanDistance), fmt.Sprintf("%.4f", d.FitnessStd)
		}
		fmt.Fprintf(w, "  %3d  %.4f  #%-4d  %.4f        %.4f  %8s  %7s  %9s  %9s\n", g.Generation, g.Best, g.BestID, g.Mean, g.BestInitial, kids, dropped, div, std)
	}
	if n := len(hist); n > 0 && hist[n-1].Diversity != nil {
		fmt.Fprintf(w, "  diversity: mean pairwise distance 1 − cos of the task vectors from %s\n", ancestorText(hist[n-1].Diversity.Ancestor))
	}
}

// printResult is the report of a finished run.
func printResult(w io.Writer, res workflows.RunResult, uiURL string) {
	fmt.Fprintf(w, "\nrun %s finished: %s\n\n", res.Run, res.StopReason)
	printHistory(w, res.History)
	win := res.Winner
	fmt.Fprintf(w, "\nwinner #%d  fitness %.4f  %s\n  made by: %s\n", win.ID, win.Fitness, win.Ref, win.Op)
	h := res.HeldOut
	verdict := "the winner BEATS the best initial model on the held-out split"
	if !h.Beat {
		verdict = "the winner did NOT beat the best initial model on the held-out split"
	}
	fmt.Fprintf(w, "held-out: winner %.4f vs best initial model #%d %.4f: %s\n", h.Winner, h.InitialID, h.InitialBest, verdict)
	if res.Dropped > 0 {
		fmt.Fprintf(w, "children dropped along the way: %d (reasons in the lineage: starter report)\n", res.Dropped)
	}
	fmt.Fprintf(w, "winner published at: %s\n", res.Published)
	budget := ""
	if res.BudgetTokens > 0 {
		budget = fmt.Sprintf(" of a budget of %d", res.BudgetTokens)
	}
	fmt.Fprintf(w, "compute: %d training + %d dev-scored tokens%s; %d held-out tokens (not charged)\n",
		res.TrainTokens, res.ScoredTokens, budget, res.HeldOutTokens)
	if res.Report != "" {
		fmt.Fprintf(w, "report: %s\n", res.Report)
	}
	if uiURL != "" {
		fmt.Fprintf(w, "web UI: %s\n", uiURL)
	}
}

// printAncestry prints the winner's family tree, most recent first.
func printAncestry(w io.Writer, lineage []workflows.Node, id int) {
	byID := map[int]workflows.Node{}
	for _, n := range lineage {
		byID[n.ID] = n
	}
	seen := map[int]bool{}
	var walk func(id, depth int)
	walk = func(id, depth int) {
		n, ok := byID[id]
		if !ok || depth > 12 {
			return
		}
		mark := ""
		if seen[id] {
			mark = " (see above)"
		}
		fmt.Fprintf(w, "%s#%d gen %d fitness %.4f: %s%s\n", strings.Repeat("  ", depth+1), n.ID, n.Generation, n.Fitness, truncate(n.Op, 80), mark)
		if seen[id] {
			return
		}
		seen[id] = true
		for _, p := range n.Parents {
			walk(p, depth+1)
		}
	}
	walk(id, 0)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func uiWorkflowURL(ui, namespace, id string) string {
	if ui == "" {
		return ""
	}
	return strings.TrimRight(ui, "/") + "/namespaces/" + namespace + "/workflows/" + id
}

// generationLine is the lasting line printed when a generation ends.
func generationLine(g workflows.GenStats, top string) string {
	s := fmt.Sprintf("generation %d: best #%d %.4f, mean %.4f (best initial %.4f)", g.Generation, g.BestID, g.Best, g.Mean, g.BestInitial)
	if g.Generation > 0 {
		s += fmt.Sprintf(", %d children, %d dropped", g.Children, g.Dropped)
	}
	if d := g.Diversity; d != nil {
		s += fmt.Sprintf(", diversity %.4f (pairs %.4f–%.4f), fitness σ %.4f", d.MeanDistance, d.MinDistance, d.MaxDistance, d.FitnessStd)
	}
	if top != "" {
		s += "; top: " + top
	}
	return s
}

// ancestorText says what task vectors are measured from.
func ancestorText(ref string) string {
	if ref == "" {
		return "the population's centroid (the run has no common base)"
	}
	return "the run's base " + ref
}
