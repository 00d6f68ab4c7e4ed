package activities

import (
	"bytes"
	"context"
	"fmt"

	"github.com/evomerge/evomerge/internal/report"
	"github.com/evomerge/evomerge/internal/stats"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// WriteReport renders a finished run's or experiment's HTML report
// (internal/report) and stores it as a content object (reports/<hex>.html),
// returning where a user opens it.
func (a *Activities) WriteReport(ctx context.Context, in workflows.WriteReportInput) (workflows.WriteReportOutput, error) {
	var out workflows.WriteReportOutput
	var b bytes.Buffer
	switch {
	case in.Run != nil && in.Experiment == nil:
		if err := report.RenderRun(&b, RunReportData(*in.Run, in.Lineage, "")); err != nil {
			return out, badInput("report of run %s: %v", in.Run.Run, err)
		}
	case in.Experiment != nil && in.Run == nil:
		tb, err := ExperimentTable(*in.Experiment)
		if err != nil {
			return out, badInput("report of experiment %s: %v", in.Experiment.Name, err)
		}
		if err := report.RenderExperiment(&b, ExperimentReportData(*in.Experiment, tb)); err != nil {
			return out, badInput("report of experiment %s: %v", in.Experiment.Name, err)
		}
	default:
		return out, badInput("write report: give exactly one of run and experiment")
	}
	ref, err := a.cfg.Store.Put(ctx, store.Reports, &b)
	if err != nil {
		return out, fmt.Errorf("storing the report: %w", err)
	}
	out.Ref, out.Location = ref.String(), a.cfg.Store.Location(store.Reports, ref)
	return out, nil
}

// RunReportData converts a finished run's result and lineage into the HTML
// report's plain data.
func RunReportData(res workflows.RunResult, lineage []workflows.Node, uiURL string) report.Run {
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

// ExperimentTable: the winner's held-out score per arm and seed, children
// that failed left out.
func ExperimentTable(res workflows.ExperimentResult) (stats.Table, error) {
	var obs []stats.Observation
	for _, o := range res.Children {
		if o.Done {
			obs = append(obs, stats.Observation{Arm: o.Arm, Seed: o.Seed, Score: o.HeldOut})
		}
	}
	return stats.Summarise(res.Arms, obs, 0.95)
}

// ExperimentReportData converts the result and its table into the report's
// plain data: per arm the seeds' curves, the best-fitness band (mean and
// 95 % t interval over the seeds that reached each generation), the
// held-out interval, the compute spent; the paired differences; the verdict.
func ExperimentReportData(res workflows.ExperimentResult, tb stats.Table) report.Experiment {
	e := report.Experiment{
		Title:   fmt.Sprintf("Experiment %s: equal compute (%d training + dev-scored tokens per run)", res.Name, res.BudgetTokens),
		Summary: []string{tb.Verdict},
		Method:  fmt.Sprintf("%s, %.0f %%", tb.Method, 100*tb.Level),
	}
	for _, a := range tb.Arms {
		arm := report.Arm{Name: a.Arm, Budget: res.BudgetTokens,
			HeldOut: report.Interval{Mean: a.Mean, Lo: a.Low, Hi: a.High, N: a.N}}
		var curves [][]float64
		for _, o := range res.Children {
			if o.Arm != a.Arm || !o.Done {
				continue
			}
			sr := report.SeedRun{Seed: o.Seed, Run: o.WorkflowID, HeldOut: o.HeldOut}
			for _, g := range o.History {
				sr.Best = append(sr.Best, g.Best)
				sr.Mean = append(sr.Mean, g.Mean)
			}
			curves = append(curves, sr.Best)
			arm.Seeds = append(arm.Seeds, sr)
			arm.TrainTokens += o.TrainTokens
			arm.ScoredTokens += o.ScoredTokens
		}
		for g := 0; ; g++ {
			var xs []float64
			for _, c := range curves {
				if g < len(c) {
					xs = append(xs, c[g])
				}
			}
			if len(xs) < 2 {
				break
			}
			iv, err := stats.MeanCI(xs, tb.Level)
			if err != nil {
				break
			}
			arm.BestCurve = append(arm.BestCurve, report.Band{Generation: g, Mean: iv.Mean, Lo: iv.Low, Hi: iv.High})
		}
		e.Arms = append(e.Arms, arm)
	}
	for _, p := range tb.Pairs {
		v := fmt.Sprintf("%s − %s: not distinguishable from noise (the CI includes 0)", p.A, p.B)
		if p.Distinguishable {
			better := p.A
			if p.Mean < 0 {
				better = p.B
			}
			v = fmt.Sprintf("%s better; the CI excludes 0", better)
		}
		e.Comparisons = append(e.Comparisons, report.Comparison{A: p.A, B: p.B,
			Diff: report.Interval{Mean: p.Mean, Lo: p.Low, Hi: p.High, N: p.N}, Verdict: v})
	}
	return e
}

// ancestorText says what task vectors are measured from.
func ancestorText(ref string) string {
	if ref == "" {
		return "the population's centroid (the run has no common base)"
	}
	return "the run's base " + ref
}
