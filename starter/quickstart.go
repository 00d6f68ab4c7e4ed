package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workers/pool"
	"github.com/evomerge/evomerge/workers/zlog"
	"github.com/evomerge/evomerge/workflows"
)

type quickstartFlags struct {
	config, dir, storeURL, out string
	port, uiPort, threads      int
	noUI, keep                 bool
	generations, population    int
	seed                       uint64
}

func cmdQuickstart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("quickstart", stderr)
	var f quickstartFlags
	fs.StringVar(&f.config, "f", "", "run config (default: the built-in demo)")
	fs.StringVar(&f.dir, "dir", ".evomerge", "state directory: Temporal's SQLite file, logs, store, winner")
	fs.StringVar(&f.storeURL, "store", "", "artifact store URL (default file://<dir>/store)")
	fs.StringVar(&f.out, "out", "", "where the winner's GGUF is written (default <dir>/<name>-winner.gguf)")
	fs.IntVar(&f.port, "port", devserver.DefaultPort, "Temporal frontend port")
	fs.IntVar(&f.uiPort, "ui-port", devserver.DefaultUIPort, "web UI port")
	fs.BoolVar(&f.noUI, "no-ui", false, "do not serve the web UI")
	// One thread by default: the in-process server, the merges and the Go runtime share the cores with ggml,
	// whose threads busy-wait; with two threads on a 2-core machine any other work stalls them badly.
	fs.IntVar(&f.threads, "threads", 1, "compute threads per activity (ggml busy-waits: at most the free cores)")
	fs.BoolVar(&f.keep, "keep", false, "keep the server and web UI up after the run until Ctrl-C")
	fs.IntVar(&f.generations, "generations", 0, "override the config's generations")
	fs.IntVar(&f.population, "population", 0, "override the config's population size")
	fs.Uint64Var(&f.seed, "seed", 0, "override the config's seed")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: quickstart takes only flags", errUsage)
	}
	cfg, err := quickstartConfig(f)
	if err != nil {
		return err
	}
	if cfg, err = uploadData(ctx, func(ctx context.Context) (*store.Store, error) {
		u, err := quickstartStoreURL(f)
		if err != nil {
			return nil, err
		}
		return store.Open(ctx, u, store.Options{CacheDir: filepath.Join(f.dir, "cache")})
	}, cfg); err != nil {
		return fmt.Errorf("%s: %w", f.config, err)
	}
	return quickstart(ctx, f, cfg, stdout)
}

// quickstartConfig is the demo config (or the given file) with the flags'
// overrides, publishing the winner to a file; checked before anything starts.
func quickstartConfig(f quickstartFlags) (workflows.RunConfig, error) {
	cfg := workflows.DemoConfig()
	if f.config != "" {
		var err error
		if cfg, err = loadRunConfig(f.config); err != nil {
			return cfg, err
		}
	}
	if f.generations != 0 {
		cfg.Generations = f.generations
	}
	if f.population != 0 {
		cfg.Population = f.population
		cfg.Children = 0 // re-derived from the new population
	}
	if f.seed != 0 {
		cfg.Seed = f.seed
	}
	if f.config == "" || cfg.Publish == nil || cfg.Publish.Kind == "store" {
		out := f.out
		if out == "" {
			out = filepath.Join(f.dir, cfg.Name+"-winner.gguf")
		}
		abs, err := filepath.Abs(out)
		if err != nil {
			return cfg, fmt.Errorf("--out: %w", err)
		}
		cfg.Publish = &workflows.PublishTarget{Kind: "path", Path: abs}
	}
	return workflows.Prepare(cfg)
}

// quickstartStoreURL is --store, or the store under the state directory.
func quickstartStoreURL(f quickstartFlags) (string, error) {
	if f.storeURL != "" {
		return f.storeURL, nil
	}
	abs, err := filepath.Abs(filepath.Join(f.dir, "store"))
	if err != nil {
		return "", err
	}
	return "file://" + abs, nil
}

// local is an embedded server with an in-process worker: everything a run
// needs on one machine.
type local struct {
	srv     *devserver.Server
	client  client.Client
	pool    *pool.Pool
	logFile *os.File
}

func (l *local) Close() {
	if l.pool != nil {
		l.pool.Stop()
	}
	if l.client != nil {
		l.client.Close()
	}
	if l.srv != nil {
		l.srv.Stop()
	}
	if l.logFile != nil {
		l.logFile.Close()
	}
}

// startLocal starts the embedded server (SQLite state under f.dir, so a
// restart continues where it stopped) and a worker polling both queues.
func startLocal(ctx context.Context, f quickstartFlags, queues workflows.TaskQueues, stdout io.Writer) (_ *local, err error) {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return nil, err
	}
	l := &local{}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	fmt.Fprintf(stdout, "starting the embedded Temporal server (state in %s)…\n", filepath.Join(f.dir, "temporal.db"))
	l.srv, err = devserver.Start(ctx, devserver.Options{
		DBPath: filepath.Join(f.dir, "temporal.db"), Port: f.port, UIPort: f.uiPort, NoUI: f.noUI,
		LogFile: filepath.Join(f.dir, "temporal-server.log"),
	})
	if err != nil {
		return nil, err
	}
	if u := l.srv.UIURL(); u != "" {
		fmt.Fprintf(stdout, "Temporal web UI: %s   frontend: %s\n", u, l.srv.FrontendAddr())
	}
	l.logFile, err = os.OpenFile(filepath.Join(f.dir, "worker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	log, err := zlog.New(l.logFile, "info", "json")
	if err != nil {
		return nil, err
	}
	l.client, err = client.DialContext(ctx, client.Options{HostPort: l.srv.FrontendAddr(), Namespace: l.srv.Namespace(), Logger: zlog.SDK{L: log}})
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded server: %w", err)
	}
	storeURL, err := quickstartStoreURL(f)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, storeURL, store.Options{CacheDir: filepath.Join(f.dir, "cache")})
	if err != nil {
		return nil, err
	}
	acts, err := activities.New(activities.Config{Store: st, WorkDir: filepath.Join(f.dir, "work"), Device: "cpu", Threads: f.threads, Log: log})
	if err != nil {
		return nil, err
	}
	// Merges are I/O bound (two at once); compute runs one at a time so ggml
	// threads never fight over the cores.
	l.pool, err = pool.Start(l.client, pool.Config{
		Queues:     []pool.Queue{{Name: queues.CPU, Concurrency: 2}, {Name: queues.GPU, Concurrency: 1}},
		Activities: acts, Workflows: true,
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "in-process worker polling %s and %s (store %s, %d threads; log %s)\n",
		queues.CPU, queues.GPU, st, f.threads, l.logFile.Name())
	return l, nil
}

func quickstart(ctx context.Context, f quickstartFlags, cfg workflows.RunConfig, stdout io.Writer) error {
	began := time.Now()
	l, err := startLocal(ctx, f, cfg.TaskQueues, stdout)
	if err != nil {
		return err
	}
	defer l.Close()
	c, srv := l.client, l.srv

	id := "quickstart-" + cfg.Name
	if d, err := c.DescribeWorkflowExecution(ctx, id, ""); err == nil &&
		d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		fmt.Fprintf(stdout, "resuming run %s, interrupted earlier, where it stopped\n", id)
	} else {
		if _, err := startRun(ctx, c, cfg, id, true); err != nil {
			return fmt.Errorf("start the demo run: %w", err)
		}
		fmt.Fprintf(stdout, "started run %s: %d models × %d generations, seed %d (a second quickstart reuses the cached demo population)\n",
			id, cfg.Population, cfg.Generations, cfg.Seed)
	}
	uiURL := uiWorkflowURL(srv.UIURL(), srv.Namespace(), id)
	if uiURL != "" {
		fmt.Fprintf(stdout, "follow it in the web UI: %s\n", uiURL)
	}
	res, err := followRun(ctx, c, id, stdout)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stdout, "\ninterrupted: run `starter quickstart` again to resume %s where it stopped\n", id)
		}
		return err
	}
	printResult(stdout, res, uiURL)
	fmt.Fprintf(stdout, "quickstart took %s\n", time.Since(began).Round(time.Second))
	if f.keep && srv.UIURL() != "" {
		fmt.Fprintf(stdout, "server and web UI stay up at %s; Ctrl-C to quit\n", srv.UIURL())
		<-ctx.Done()
	}
	return nil
}
