// Command workers runs EvoMerge's Temporal workers: it polls the configured
// task queues (cpu for merges and publishing, gpu for fine-tunes and
// evaluations), runs the activities against the artifact store, and, unless
// told otherwise, the Evolution workflow's tasks too. SIGTERM or SIGINT stop
// it cleanly: running activities get a moment to heartbeat, then are
// cancelled and retried elsewhere from their last heartbeat.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workers/pool"
	"github.com/evomerge/evomerge/workers/zlog"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	log, err := zlog.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	st, err := store.Open(ctx, cfg.Store, store.Options{CacheDir: cfg.CacheDir, CacheLimit: cfg.CacheLimit, S3Endpoint: cfg.S3Endpoint})
	if err != nil {
		return err
	}
	acts, err := activities.New(activities.Config{
		Store: st, WorkDir: cfg.WorkDir, Threads: cfg.Threads, Device: cfg.Device, CUDALibrary: cfg.CUDALibrary, Log: log,
	})
	if err != nil {
		return err
	}
	opts, err := cfg.clientOptions()
	if err != nil {
		return err
	}
	opts.Logger = zlog.SDK{L: log}
	c, err := dialUntilUp(ctx, opts, cfg.Address, log)
	if err != nil {
		return err
	}
	defer c.Close()

	wopts := worker.Options{}
	// EVOMERGE_HEARTBEAT_THROTTLE caps how stale heartbeat progress on the
	// server may be (SDK default up to 60 s); infra/chaos sets it to read a
	// fine-tune's step at the moment it kills the worker.
	if v := os.Getenv("EVOMERGE_HEARTBEAT_THROTTLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("EVOMERGE_HEARTBEAT_THROTTLE: %q is not a positive duration", v)
		}
		wopts.MaxHeartbeatThrottleInterval, wopts.DefaultHeartbeatThrottleInterval = d, d
	}
	p, err := pool.Start(c, pool.Config{
		Queues: cfg.Queues, Activities: acts, Workflows: cfg.Workflows,
		Options: wopts,
	})
	if err != nil {
		return err
	}
	log.Info().Str("address", cfg.Address).Str("namespace", cfg.Namespace).
		Any("queues", cfg.Queues).Str("store", st.String()).Str("device", cfg.Device).
		Int("threads", cfg.Threads).Msg("worker started")
	<-ctx.Done()
	log.Info().Msg("stopping: waiting for running activities")
	p.Stop()
	log.Info().Msg("stopped")
	return nil
}

// dialUntilUp connects to Temporal, retrying with backoff (1 s doubling to 30 s) while the server is down,
// as a worker must across a server restart: exiting would leave restarts to a supervisor. It gives up only
// when ctx ends (SIGTERM).
func dialUntilUp(ctx context.Context, opts client.Options, address string, log zerolog.Logger) (client.Client, error) {
	wait := time.Second
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		log.Warn().Err(err).Str("address", address).Dur("retry_in", wait).Msg("cannot reach Temporal; retrying")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to Temporal at %s: %w", address, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
