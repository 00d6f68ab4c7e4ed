package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/evomerge/evomerge/workflows"
)

// runID is the workflow ID of a run: "evo-<name>" unless given.
func runID(cfg workflows.RunConfig, id string) string {
	if id != "" {
		return id
	}
	return "evo-" + cfg.Name
}

// startRun is the one way a run starts: an Evolution workflow with the run's
// search attribute, its own tasks on the cpu queue. A run with the same id
// already running is an error, or with attach (quickstart resuming after an
// interruption) the run to follow.
func startRun(ctx context.Context, c client.Client, cfg workflows.RunConfig, id string, attach bool) (client.WorkflowRun, error) {
	policy := enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL
	if attach {
		policy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	}
	opts := client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                cfg.TaskQueues.CPU,
		WorkflowIDConflictPolicy: policy,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchRun.ValueSet(cfg.Name)),
		StaticSummary:            fmt.Sprintf("evolve %s: %d models × %d generations, seed %d", cfg.Name, cfg.Population, cfg.Generations, cfg.Seed),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.WorkflowEvolution, workflows.EvolutionInput{RunConfig: cfg})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, fmt.Errorf("a run with id %q is already running (watch it with: starter watch %s, or stop it first)", id, id)
	}
	return run, err
}

func cmdStart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("start", stderr)
	var cf clientFlags
	cf.register(fs)
	var sf storeFlags
	sf.register(fs)
	file := fs.String("f", "", "run config file (JSON or YAML)")
	id := fs.String("id", "", "workflow ID (default evo-<name>)")
	watch := fs.Bool("watch", false, "watch the run until it ends")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *file == "" || len(pos) > 0 {
		return fmt.Errorf("%w: start needs -f run.json|run.yaml and no other arguments", errUsage)
	}
	// The config is checked completely before anything is contacted.
	cfg, err := loadRunConfig(*file)
	if err != nil {
		return err
	}
	// Data files are checked and uploaded; the run names them by hash.
	if cfg, err = uploadData(ctx, sf.open, cfg); err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	wid := runID(cfg, *id)
	run, err := startRun(ctx, c, cfg, wid, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "started run %s (workflow %s, run %s)\n", cfg.Name, wid, run.GetRunID())
	if !*watch {
		fmt.Fprintf(stdout, "watch it: starter watch %s\n", wid)
		return nil
	}
	return watchRun(ctx, c, wid, stdout, "")
}

func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("watch", stderr)
	return withIDClient(ctx, fs, nil, args, "run (workflow) id", func(c client.Client, id string) error {
		return watchRun(ctx, c, id, stdout, "")
	})
}

// watchRun shows live progress until the run ends (following its
// continue-as-new chain), then prints the report.
func watchRun(ctx context.Context, c client.Client, id string, stdout io.Writer, uiURL string) error {
	res, err := followRun(ctx, c, id, stdout)
	if err != nil {
		return err
	}
	printResult(stdout, res, uiURL)
	return nil
}

func followRun(ctx context.Context, c client.Client, id string, stdout io.Writer) (workflows.RunResult, error) {
	type outcome struct {
		res workflows.RunResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		o.err = c.GetWorkflow(ctx, id, "").Get(ctx, &o.res) // follows continue-as-new
		done <- o
	}()
	tty := isTerminal(stdout)
	last := ""
	reported := 0 // generations already printed
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case o := <-done:
			if tty && last != "" {
				fmt.Fprintln(stdout)
			}
			if o.err != nil {
				return o.res, fmt.Errorf("run %s: %w", id, o.err)
			}
			return o.res, nil
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(stdout)
			}
			return workflows.RunResult{}, fmt.Errorf("stopped watching %s (the run goes on): %w", id, ctx.Err())
		case <-tick.C:
			s, err := queryStatus(ctx, c, id)
			if err != nil {
				continue // between two runs of the chain, or no worker yet
			}
			if len(s.History) > reported {
				// A generation finished: one lasting line with its numbers
				// and the leaderboard's top.
				if tty && last != "" {
					fmt.Fprint(stdout, "\r\033[K")
				}
				for _, g := range s.History[reported:] {
					fmt.Fprintln(stdout, generationLine(g, topOf(ctx, c, id, 3)))
				}
				reported, last = len(s.History), ""
			}
			line := statusLine(s)
			if p := activityProgress(ctx, c, id); p != "" {
				line += " · " + p
			}
			if line == last {
				continue
			}
			if tty {
				fmt.Fprintf(stdout, "\r\033[K%s", truncate(line, 160))
			} else {
				fmt.Fprintln(stdout, line)
			}
			last = line
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func queryStatus(ctx context.Context, c client.Client, id string) (workflows.Status, error) {
	var s workflows.Status
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		return s, err
	}
	return s, v.Get(&s)
}

func queryNodes(ctx context.Context, c client.Client, id, query string) ([]workflows.Node, error) {
	var n []workflows.Node
	v, err := c.QueryWorkflow(ctx, id, "", query)
	if err != nil {
		return nil, err
	}
	return n, v.Get(&n)
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	top := fs.Int("top", 10, "leaderboard rows to show")
	return withIDClient(ctx, fs, nil, args, "run (workflow) id", func(c client.Client, id string) error {
		desc, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		state := strings.TrimPrefix(desc.GetWorkflowExecutionInfo().GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")
		fmt.Fprintf(stdout, "run %s: %s\n", id, strings.ToLower(state))
		s, err := queryStatus(ctx, c, id)
		if err != nil {
			return fmt.Errorf("query status of %s (is a worker running?): %w", id, err)
		}
		fmt.Fprintln(stdout, statusLine(s))
		if len(s.History) > 0 {
			printHistory(stdout, s.History)
		}
		board, err := queryNodes(ctx, c, id, workflows.QueryLeaderboard)
		if err == nil && len(board) > 0 {
			fmt.Fprintln(stdout, "leaderboard:")
			printLeaderboard(stdout, board, *top)
		}
		return nil
	})
}

func cmdStop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stop", stderr)
	reason := fs.String("reason", "stopped from the starter", "why (recorded as the run's stop reason)")
	useSignal := fs.Bool("signal", false, "send the stop signal instead of the update (no answer, works without a running worker)")
	return withIDClient(ctx, fs, nil, args, "run (workflow) id", func(c client.Client, id string) error {
		if *useSignal {
			if err := c.SignalWorkflow(ctx, id, "", workflows.SignalStop, *reason); err != nil {
				return fmt.Errorf("signal stop to %s: %w", id, err)
			}
			fmt.Fprintf(stdout, "stop signal sent to %s; it ends after its current generation\n", id)
			return nil
		}
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: id, UpdateName: workflows.UpdateStop, Args: []any{*reason},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
		var s workflows.Status
		if err := h.Get(ctx, &s); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "run %s stops after generation %d (%s)\n", id, s.Generation, s.StopReason)
		return nil
	})
}

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", stderr)
	var cf clientFlags
	ui := fs.String("ui", "http://localhost:8233", "web UI base address for the link (empty: none)")
	htmlOut := fs.String("html", "", "also write the report as one self-contained HTML file with plots here")
	return withIDClient(ctx, fs, &cf, args, "run (workflow) id", func(c client.Client, id string) error {
		desc, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return fmt.Errorf("run %s is %s, not completed (try: starter status %s)", id,
				strings.ToLower(strings.TrimPrefix(st.String(), "WORKFLOW_EXECUTION_STATUS_")), id)
		}
		var res workflows.RunResult
		if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
			return fmt.Errorf("result of %s: %w", id, err)
		}
		printResult(stdout, res, uiWorkflowURL(*ui, cf.Namespace, id))
		lineage, lineageErr := queryNodes(ctx, c, id, workflows.QueryLineage)
		if *htmlOut != "" {
			path, err := writeRunReport(*htmlOut, runReport(res, lineage, uiWorkflowURL(*ui, cf.Namespace, id)))
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "HTML report: %s\n", path)
		}
		if err := lineageErr; err == nil {
			fmt.Fprintln(stdout, "\nwinner's ancestry:")
			printAncestry(stdout, lineage, res.Winner.ID)
			var dropped []string
			for _, n := range lineage {
				if n.Status == workflows.StatusDropped {
					dropped = append(dropped, fmt.Sprintf("  #%d gen %d: %s", n.ID, n.Generation, n.Reason))
				}
			}
			if len(dropped) > 0 {
				fmt.Fprintln(stdout, "dropped children:")
				fmt.Fprintln(stdout, strings.Join(dropped, "\n"))
			}
		}
		return nil
	})
}

// topOf is the leaderboard's top n as "#12 0.7310, #9 0.7012".
func topOf(ctx context.Context, c client.Client, id string, n int) string {
	board, err := queryNodes(ctx, c, id, workflows.QueryLeaderboard)
	if err != nil {
		return ""
	}
	var parts []string
	for i, m := range board {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("#%d %.4f", m.ID, m.Fitness))
	}
	return strings.Join(parts, ", ")
}

// withIDClient finishes a command that takes the Temporal connection flags and one id: it registers the
// connection flags on fs (beside the command's own) into cf (nil: the caller does not need them), parses
// args, dials, and calls fn.
func withIDClient(ctx context.Context, fs *flag.FlagSet, cf *clientFlags, args []string, what string, fn func(c client.Client, id string) error) error {
	if cf == nil {
		cf = &clientFlags{}
	}
	cf.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	id, err := oneArg(pos, what)
	if err != nil {
		return err
	}
	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c, id)
}
