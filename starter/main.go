// Command starter is EvoMerge's command line: it starts evolution runs on
// Temporal, schedules them, watches them, stops them and reports on them.
// `starter quickstart` runs the whole demo on one machine: embedded Temporal
// server with its web UI, an in-process worker, the demo run and its report.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: starter <command> [flags]

commands:
  quickstart                 embedded server + web UI + worker, run the demo evolution, print the report
  start -f run.json|yaml     start a run (config checked before anything starts)
  watch <run-id>             live progress until the run ends, then the report
  status <run-id>            one look at a run: generation, progress, leaderboard
  stop <run-id>              end a run cleanly after its current generation
  report <run-id>            per-generation table, winner and its lineage
  schedule create|list|delete  Temporal Schedules (e.g. nightly) continuing a lineage
  merge -c mergekit.yaml -o out.gguf   one-off local merge, no Temporal
  eval -m model.gguf -f suite.yaml     score one model on a suite file (fitness.dev's task schema), no Temporal
  experiment -f exp.yaml [--watch] [--local]  equal-compute experiment: arms x seeds, mean ± 95% CI, verdict
  pull <name> [-o dir]       copy a winner published to the store out as <name>.gguf and <name>-hf/, no Temporal

Temporal connection flags (all commands but quickstart, merge, eval and pull), or env:
  --address    TEMPORAL_ADDRESS    (default localhost:7233)
  --namespace  TEMPORAL_NAMESPACE  (default default)
  --tls-cert / --tls-key / --tls-ca  TEMPORAL_TLS_CERT / _KEY / _CA
  --api-key    TEMPORAL_API_KEY    (Temporal Cloud; turns on TLS)
Run "starter <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "quickstart":
		return cmdQuickstart(ctx, rest, stdout, stderr)
	case "start":
		return cmdStart(ctx, rest, stdout, stderr)
	case "watch":
		return cmdWatch(ctx, rest, stdout, stderr)
	case "status":
		return cmdStatus(ctx, rest, stdout, stderr)
	case "stop":
		return cmdStop(ctx, rest, stdout, stderr)
	case "report":
		return cmdReport(ctx, rest, stdout, stderr)
	case "schedule":
		return cmdSchedule(ctx, rest, stdout, stderr)
	case "merge":
		return cmdMerge(ctx, rest, stdout, stderr)
	case "eval":
		return cmdEval(ctx, rest, stdout, stderr)
	case "experiment":
		return cmdExperiment(ctx, rest, stdout, stderr)
	case "pull":
		return cmdPull(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "starter: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

// newFlags makes a command's flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("starter "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags allows flags after positional arguments ("stop demo --reason x").
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// oneArg is the single positional argument a command takes.
func oneArg(pos []string, what string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("%w: want exactly one %s, got %d arguments", errUsage, what, len(pos))
	}
	return pos[0], nil
}
