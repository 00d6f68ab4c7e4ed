// Command chaos runs EvoMerge's durability proof (make chaos): an
// uninterrupted run, then the same config and seed while worker processes are
// SIGKILLed and the server process is restarted, and compares the winners'
// sha256. It exits non-zero when the proof fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/evomerge/evomerge/infra/chaos"
	"github.com/evomerge/evomerge/internal/store/s3test"
)

func main() {
	kills := flag.Int("kills", 10, "worker SIGKILLs during the chaos run")
	restarts := flag.Int("restarts", 2, "server restarts during the chaos run")
	seed := flag.Uint64("seed", 7, "seed of the chaos (kill moments); the run's own seed is -run-seed")
	runSeed := flag.Uint64("run-seed", 42, "the evolution run's seed")
	gens := flag.Int("generations", 3, "generations of the run")
	steps := flag.Int("steps", 24, "fine-tune steps per child (at least; up to 1.5x)")
	storeKind := flag.String("store", "s3", "s3 (versitygw on loopback) or file")
	fastFail := flag.Bool("fast-fail", false, "fail a killed worker's attempts at once instead of waiting out heartbeat timeouts")
	dir := flag.String("dir", "", "work directory (default: a new temp dir, removed on success)")
	binDir := flag.String("bin", "", "use server, worker and starter binaries already built in this directory")
	timeout := flag.Duration("timeout", 45*time.Minute, "limit for each run")
	flag.Parse()
	if err := run(*kills, *restarts, *seed, *runSeed, *gens, *steps, *storeKind, *fastFail, *dir, *binDir, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(kills, restarts int, seed, runSeed uint64, gens, steps int, storeKind string, fastFail bool, dir, binDir string, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	keep := dir != ""
	if dir == "" {
		d, err := os.MkdirTemp("", "evomerge-chaos-")
		if err != nil {
			return err
		}
		dir = d
	}
	fmt.Printf("chaos: working in %s\n", dir)
	bins := chaos.Binaries{Server: filepath.Join(binDir, "evomerge-server"), Worker: filepath.Join(binDir, "workers"), Starter: filepath.Join(binDir, "starter")}
	if binDir == "" {
		var err error
		if bins, err = chaos.Build(ctx, filepath.Join(dir, "bin")); err != nil {
			return err
		}
	}
	storeURL := func(name string) string { return "file://" + filepath.Join(dir, name, "store") }
	if storeKind == "s3" {
		s3, err := s3test.Run(ctx, filepath.Join(dir, "s3"), nil)
		if err != nil {
			return err
		}
		defer s3.Stop()
		for _, kv := range s3.Env() {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
		storeURL = func(name string) string { return s3.StoreURL(name) }
	} else if storeKind != "file" {
		return fmt.Errorf("-store %q: want s3 or file", storeKind)
	}
	cfg := chaos.SmallConfig("chaos", runSeed, gens, steps)
	base := chaos.Options{Bins: bins, Config: cfg, Threads: 1, Log: os.Stdout, Timeout: timeout}

	fmt.Println("== uninterrupted run")
	o := base
	o.Dir, o.StoreURL = filepath.Join(dir, "clean"), storeURL("clean")
	clean, err := chaos.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("uninterrupted run: %w", err)
	}
	clean.Print(os.Stdout)

	fmt.Printf("== chaos run: %d worker kills, %d server restarts, chaos seed %d\n", kills, restarts, seed)
	o = base
	o.Dir, o.StoreURL = filepath.Join(dir, "chaos"), storeURL("chaos")
	o.Kills, o.ServerRestarts, o.Seed, o.FastFail = kills, restarts, seed, fastFail
	rep, err := chaos.Run(ctx, o)
	if rep != nil {
		rep.Print(os.Stdout)
	}
	if err != nil {
		return fmt.Errorf("chaos run: %w (logs in %s)", err, o.Dir)
	}
	problems := chaos.Check(clean, rep, kills, restarts)
	fmt.Printf("winner uninterrupted: %s\nwinner with chaos:    %s\n", clean.Winner, rep.Winner)
	if len(problems) > 0 {
		return fmt.Errorf("durability not proven (logs in %s):\n  %s", dir, strings.Join(problems, "\n  "))
	}
	fmt.Println("chaos: PASS — same winner and lineage, store verified, every kill cost at most one checkpoint interval")
	if !keep {
		os.RemoveAll(dir)
	}
	return nil
}
