package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"gopkg.in/yaml.v3"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/internal/report"
	"github.com/evomerge/evomerge/internal/stats"
	"github.com/evomerge/evomerge/workflows"
)

// starter experiment: start (or resume, or show) an equal-compute experiment
// and print its table: per arm the winner's held-out score, mean ± 95 % CI
// over seeds, the compute spent, the paired differences and the verdict.

func cmdExperiment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("experiment", stderr)
	var cf clientFlags
	cf.register(fs)
	file := fs.String("f", "", "experiment config file (JSON or YAML)")
	watch := fs.Bool("watch", false, "follow the experiment until it ends and print its table")
	jsonOut := fs.String("json", "", "also write the result and the table as JSON to this file")
	htmlOut := fs.String("html", "", "also write the experiment report (one self-contained HTML file with plots) here")
	var lf quickstartFlags
	localRun := fs.Bool("local", false, "run on an embedded Temporal server with an in-process worker (implies --watch)")
	fs.StringVar(&lf.dir, "dir", ".evomerge", "--local: state directory")
	fs.IntVar(&lf.port, "port", devserver.DefaultPort, "--local: Temporal frontend port")
	fs.IntVar(&lf.uiPort, "ui-port", devserver.DefaultUIPort, "--local: web UI port")
	fs.BoolVar(&lf.noUI, "no-ui", false, "--local: do not serve the web UI")
	fs.IntVar(&lf.threads, "threads", 1, "--local: compute threads per activity")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *file == "" || len(pos) > 0 {
		return fmt.Errorf("%w: experiment needs -f experiment.yaml and no other arguments", errUsage)
	}
	e, err := loadExperiment(*file)
	if err != nil {
		return err
	}
	var c client.Client
	if *localRun {
		l, err := startLocal(ctx, lf, e.Base.WithDefaults().TaskQueues, stdout)
		if err != nil {
			return err
		}
		defer l.Close()
		c, *watch = l.client, true
	} else {
		if c, err = cf.dial(ctx); err != nil {
			return err
		}
		defer c.Close()
	}
	res, err := startOrFollowExperiment(ctx, c, e, *watch, stdout)
	if err != nil || res == nil {
		return err
	}
	tb, err := experimentTable(*res)
	if err != nil {
		return err
	}
	printExperiment(stdout, *res, tb)
	if *htmlOut != "" {
		if err := writeExperimentHTML(*htmlOut, *res, tb); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "report: %s\n", *htmlOut)
	}
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(struct {
			Result *workflows.ExperimentResult `json:"result"`
			Table  stats.Table                 `json:"table"`
		}{res, tb}, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// loadExperiment reads and checks an experiment config; errors name the
// file, the line where known, and the field.
func loadExperiment(path string) (workflows.ExperimentConfig, error) {
	var e workflows.ExperimentConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	if len(data) > maxConfigBytes {
		return e, fmt.Errorf("%s: config is larger than the %d bytes allowed", path, maxConfigBytes)
	}
	return parseExperiment(filepath.Base(path), data)
}

func parseExperiment(name string, data []byte) (workflows.ExperimentConfig, error) {
	var e workflows.ExperimentConfig
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return e, fmt.Errorf("%s: %v", name, err)
	}
	var v any
	if err := root.Decode(&v); err != nil {
		return e, fmt.Errorf("%s: %v", name, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return e, fmt.Errorf("%s: an experiment config must be a mapping of fields", name)
	}
	js, err := json.Marshal(v)
	if err != nil {
		return e, fmt.Errorf("%s: %v", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, locateConfigError(name, &root, fmt.Errorf("experiment config: %w", err))
	}
	p, err := workflows.PrepareExperiment(e)
	if err != nil {
		return e, errors.New(strings.Replace(locateConfigError(name, &root, err).Error(), "invalid run config", "invalid experiment config", 1))
	}
	return p, nil
}

func experimentID(e workflows.ExperimentConfig) string { return "experiment-" + e.Name }

// startOrFollowExperiment starts the experiment, or attaches to it if it is
// running (resume after the starter was interrupted; the workflow itself
// survives crashes), or reads its result if it finished. Without watch it
// returns nil after starting.
func startOrFollowExperiment(ctx context.Context, c client.Client, e workflows.ExperimentConfig, watch bool, stdout io.Writer) (*workflows.ExperimentResult, error) {
	id := experimentID(e)
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	switch {
	case err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		fmt.Fprintf(stdout, "experiment %s already finished; its table:\n", id)
		watch = true
	case err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		fmt.Fprintf(stdout, "experiment %s is running; following it\n", id)
	default:
		queue := e.Base.WithDefaults().TaskQueues.CPU
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: queue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchExperiment.ValueSet(e.Name)),
			StaticSummary: fmt.Sprintf("experiment %s: %s × %d seeds at %d tokens each", e.Name,
				strings.Join(e.Arms, ", "), len(e.Seeds), e.Budget.Tokens),
		}, workflows.WorkflowExperiment, workflows.ExperimentInput{ExperimentConfig: e})
		if err != nil {
			return nil, fmt.Errorf("start experiment %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "started experiment %s: arms %s × seeds %v, budget %d tokens (training + scored) each, %d children at a time\n",
			id, strings.Join(e.Arms, ", "), []uint64(e.Seeds), e.Budget.Tokens, e.MaxParallel)
	}
	if !watch {
		fmt.Fprintf(stdout, "follow it: starter experiment -f <file> --watch   (children: %s = %q in the web UI)\n", workflows.SearchAttrExperiment, e.Name)
		return nil, nil
	}
	done := make(chan error, 1)
	var res workflows.ExperimentResult
	go func() { done <- c.GetWorkflow(ctx, id, "").Get(ctx, &res) }()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	reported := map[string]bool{}
	began := time.Now()
	for {
		select {
		case err := <-done:
			if err != nil {
				return nil, fmt.Errorf("experiment %s: %w", id, err)
			}
			return &res, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped following %s (the experiment goes on; run the same command to resume following): %w", id, ctx.Err())
		case <-tick.C:
			v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryExperimentStatus)
			var s workflows.ExperimentStatus
			if err != nil || v.Get(&s) != nil {
				continue
			}
			for _, o := range s.Children {
				if (o.Done || o.Error != "") && !reported[o.WorkflowID] {
					reported[o.WorkflowID] = true
					fmt.Fprintf(stdout, "[%s] %d/%d %s\n", time.Since(began).Round(time.Second), len(reported), s.Total, childLine(o))
				}
			}
		}
	}
}

func childLine(o workflows.ChildOutcome) string {
	if !o.Done {
		return fmt.Sprintf("%-16s seed %-3d FAILED: %s", o.Arm, o.Seed, o.Error)
	}
	return fmt.Sprintf("%-16s seed %-3d held-out %.4f (initial best %.4f) · %d generations · %d trained + %d scored tokens",
		o.Arm, o.Seed, o.HeldOut, o.InitialHeldOut, o.Generations, o.TrainTokens, o.ScoredTokens)
}

// experimentTable: the winner's held-out score per arm and seed, children
// that failed left out (activities.ExperimentTable).
func experimentTable(res workflows.ExperimentResult) (stats.Table, error) {
	return activities.ExperimentTable(res)
}

func printExperiment(w io.Writer, res workflows.ExperimentResult, tb stats.Table) {
	fmt.Fprintf(w, "\nexperiment %s: winner's held-out score per arm over seeds %v, budget %d tokens (training + dev-scored) per run\n",
		res.Name, res.Seeds, res.BudgetTokens)
	fmt.Fprintf(w, "(%s, %.0f %%)\n\n", tb.Method, 100*tb.Level)
	fmt.Fprintf(w, "%-16s %6s %-26s %5s %12s %12s %6s\n", "arm", "mean", "95% CI", "seeds", "trained", "scored", "gens")
	for _, a := range tb.Arms {
		var train, scored, gens float64
		n := 0.0
		for _, o := range res.Children {
			if o.Arm == a.Arm && o.Done {
				train += float64(o.TrainTokens)
				scored += float64(o.ScoredTokens)
				gens += float64(o.Generations)
				n++
			}
		}
		fmt.Fprintf(w, "%-16s %6.4f %-26s %5d %12.0f %12.0f %6.1f\n", a.Arm, a.Mean, ci(a.Interval), a.N, train/n, scored/n, gens/n)
	}
	fmt.Fprintf(w, "(trained, scored, gens: means over the arm's seeds; scored counts every token the model ran on the dev split:\n prompts with their few-shot examples, continuations and generated tokens; shared generation 0 scored once for all: %d tokens)\n\n", res.Shared.Gen0Tokens)
	fmt.Fprintln(w, "paired differences (A - B over the seeds both have):")
	for _, p := range tb.Pairs {
		mark := "not distinguishable from noise"
		if p.Distinguishable {
			mark = "distinguishable"
		}
		fmt.Fprintf(w, "  %-16s - %-16s %+7.4f %-28s %d seeds  %s\n", p.A, p.B, p.Mean, ci(p.Interval), p.N, mark)
	}
	fmt.Fprintf(w, "\nverdict: %s\n", tb.Verdict)
}

func ci(iv stats.Interval) string {
	if math.IsNaN(iv.Low) {
		return "(one seed: no interval)"
	}
	return fmt.Sprintf("[%+.4f, %+.4f]", iv.Low, iv.High)
}

// experimentReport converts the result and its table into the report's
// plain data (activities.ExperimentReportData).
func experimentReport(res workflows.ExperimentResult, tb stats.Table) report.Experiment {
	return activities.ExperimentReportData(res, tb)
}

func writeExperimentHTML(path string, res workflows.ExperimentResult, tb stats.Table) error {
	var b bytes.Buffer
	if err := report.RenderExperiment(&b, experimentReport(res, tb)); err != nil {
		return fmt.Errorf("render the experiment report: %w", err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
