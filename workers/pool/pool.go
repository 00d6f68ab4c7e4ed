// Package pool runs EvoMerge's Temporal workers: one worker per task queue,
// each with its own activity concurrency, all sharing one client and one set
// of activities. The worker binary and the starter's in-process quickstart
// worker both use it.
package pool

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/workflows"
)

// Queue is one task queue to poll and how many activities of it run at once.
type Queue struct {
	Name        string
	Concurrency int
}

// ParseQueues reads "cpu=4,gpu=1" (a bare name means concurrency 1).
func ParseQueues(s string) ([]Queue, error) {
	var qs []Queue
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, n, hasN := strings.Cut(part, "=")
		q := Queue{Name: strings.TrimSpace(name), Concurrency: 1}
		if q.Name == "" {
			return nil, fmt.Errorf("queues: empty queue name in %q", part)
		}
		if hasN {
			c, err := strconv.Atoi(strings.TrimSpace(n))
			if err != nil || c < 1 {
				return nil, fmt.Errorf("queues: %s: concurrency %q is not a positive integer", q.Name, n)
			}
			q.Concurrency = c
		}
		if seen[q.Name] {
			return nil, fmt.Errorf("queues: %s listed twice", q.Name)
		}
		seen[q.Name] = true
		qs = append(qs, q)
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("queues: none given in %q (e.g. cpu=4,gpu=1)", s)
	}
	return qs, nil
}

// Config selects what the pool runs.
type Config struct {
	Queues []Queue
	// Activities to register on every queue's worker (nil: workflows only).
	Activities *activities.Activities
	// Workflows also registers the Evolution workflow, so these workers
	// process workflow tasks of the queues they poll.
	Workflows bool
	// Options is the template for each worker (concurrency is set per queue).
	Options worker.Options
}

// Pool is a set of running workers.
type Pool struct {
	workers []worker.Worker
}

// Start starts one worker per queue.
func Start(c client.Client, cfg Config) (*Pool, error) {
	if len(cfg.Queues) == 0 {
		return nil, errors.New("pool: no task queues")
	}
	if cfg.Activities == nil && !cfg.Workflows {
		return nil, errors.New("pool: nothing to run (no activities, no workflows)")
	}
	p := &Pool{}
	for _, q := range cfg.Queues {
		opts := cfg.Options
		opts.MaxConcurrentActivityExecutionSize = q.Concurrency
		// A worker stopping (SIGTERM) gives running activities a moment to
		// heartbeat their last progress before they are cancelled.
		if opts.WorkerStopTimeout == 0 {
			opts.WorkerStopTimeout = 10 * time.Second
		}
		w := worker.New(c, q.Name, opts)
		if cfg.Workflows {
			workflows.RegisterWorkflows(w)
		}
		if cfg.Activities != nil {
			cfg.Activities.Register(w)
		}
		if err := w.Start(); err != nil {
			p.Stop()
			return nil, fmt.Errorf("pool: start worker on %s: %w", q.Name, err)
		}
		p.workers = append(p.workers, w)
	}
	return p, nil
}

// Stop stops every worker, waiting for running activities up to each
// worker's stop timeout.
func (p *Pool) Stop() {
	for _, w := range p.workers {
		w.Stop()
	}
	p.workers = nil
}
