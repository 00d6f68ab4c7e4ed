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
)

func main() {
	kills := flag.Int("kills", 10, "worker SIGKILLs during the chaos run")
	restarts := flag.Int("restarts", 2, "server restarts during the chaos run")
	seed := flag.Uint64("seed", 7, "seed of the chaos (kill moments); the run's own seed is -run-seed")
	runSeed := flag.Uint64("run-seed", 42, "the evolution run's seed")
	gens := flag.Int("generations", 0, "generations of the run (0: sized to the chaos, at least 3)")
	steps := flag.Int("steps", 24, "fine-tune steps per child (at least; up to 1.5x)")
	storeKind := flag.String("store", "s3", "s3 (versitygw on loopback) or file")
	fastFail := flag.Bool("fast-fail", false, "fail a killed worker's attempts at once instead of waiting out heartbeat timeouts")
	dir := flag.String("dir", "", "work directory (default: a new temp dir, removed on success)")
	binDir := flag.String("bin", "", "use server, worker and starter binaries already built in this directory")
	timeout := flag.Duration("timeout", 45*time.Minute, "limit for each run")
	var sf chaos.StoreFaults
	flag.IntVar(&sf.Outages, "store-outages", 0, "times the S3 server (versitygw) is stopped and restarted during the chaos run (-store s3)")
	flag.IntVar(&sf.Stalls, "store-stalls", 0, "windows during the chaos run in which the stall proxy delays every new S3 connection (-store s3)")
	flag.IntVar(&sf.CacheWipes, "cache-wipes", 0, "times a worker's local store cache is deleted during the chaos run (-store s3)")
	diskFaults := flag.Int("disk-faults", 0, "times a gpu worker's work directory (a tmpfs the harness mounts; needs root) fills up for 4-8 s during the chaos run")
	flag.Parse()
	if err := run(*kills, *restarts, *diskFaults, *seed, *runSeed, *gens, *steps, *storeKind, *fastFail, *dir, *binDir, *timeout, sf); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(kills, restarts, diskFaults int, seed, runSeed uint64, gens, steps int, storeKind string, fastFail bool, dir, binDir string, timeout time.Duration, sf chaos.StoreFaults) error {
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
	fmt.Println("chaos: topology: 1 server process, 2 worker processes on the cpu queue, 2 on the gpu queue; this harness" +
		" runs where there is no GPU, so the gpu-queue workers compute with --device cpu (the queue split and the kills are real, the device is not)")
	bins := chaos.Binaries{Server: filepath.Join(binDir, "evomerge-server"), Worker: filepath.Join(binDir, "workers"), Starter: filepath.Join(binDir, "starter")}
	if binDir == "" {
		var err error
		if bins, err = chaos.Build(ctx, filepath.Join(dir, "bin")); err != nil {
			return err
		}
	}
	storeURL := func(name string) string { return "file://" + filepath.Join(dir, name, "store") }
	storeFaults := sf.Outages + sf.Stalls + sf.CacheWipes
	var faulty *chaos.FaultyS3
	if storeKind == "s3" {
		// Both runs go through the stall proxy; faults are injected only during the chaos run.
		var err error
		if faulty, err = chaos.StartFaultyS3(ctx, filepath.Join(dir, "s3")); err != nil {
			return err
		}
		defer faulty.Stop()
		for _, kv := range faulty.Env() {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
		storeURL = faulty.StoreURL
	} else if storeKind != "file" {
		return fmt.Errorf("-store %q: want s3 or file", storeKind)
	} else if storeFaults > 0 {
		return fmt.Errorf("-store-outages, -store-stalls and -cache-wipes need -store s3")
	}
	if gens == 0 {
		// A disk fault holds the chaos loop about as long as two kills.
		gens = chaos.GenerationsFor(kills+2*diskFaults, restarts)
		fmt.Printf("chaos: %d generations, sized for %d kills and %d restarts\n", gens, kills, restarts)
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

	fmt.Printf("== chaos run: %d worker kills, %d server restarts, %d disk faults, chaos seed %d\n", kills, restarts, diskFaults, seed)
	o = base
	o.Dir, o.StoreURL = filepath.Join(dir, "chaos"), storeURL("chaos")
	o.Kills, o.ServerRestarts, o.Seed, o.FastFail, o.DiskFaults = kills, restarts, seed, fastFail, diskFaults
	var faultsDone <-chan chaos.StoreFaultReport
	var fr chaos.StoreFaultReport
	stopFaults := func() {}
	if storeFaults > 0 {
		// Spread over most of the time the uninterrupted run took (the chaos run takes longer).
		sf.Seed, sf.Span, sf.Log, sf.CacheDirs = seed, chaos.FaultSpan(clean.Elapsed, kills+2*diskFaults), os.Stdout, chaos.WorkerCacheDirs(o.Dir)
		fctx, cancel := context.WithCancel(ctx)
		stopFaults = cancel
		faultsDone = faulty.Inject(fctx, sf)
	}
	rep, err := chaos.Run(ctx, o)
	stopFaults()
	if rep != nil {
		rep.Print(os.Stdout)
	}
	if err != nil {
		return fmt.Errorf("chaos run: %w (logs in %s)", err, o.Dir)
	}
	problems := chaos.Check(clean, rep, kills, restarts)
	if rep.DiskFaults < diskFaults {
		problems = append(problems, fmt.Sprintf("only %d of %d disk faults happened before the run ended", rep.DiskFaults, diskFaults))
	}
	if faultsDone != nil {
		fr = <-faultsDone
		fmt.Println(fr.String())
		for _, l := range fr.Refetched() {
			fmt.Println("  cache " + l)
		}
		if fr.Err != nil {
			problems = append(problems, "store fault injection failed: "+fr.Err.Error())
		}
		if fr.Outages < sf.Outages || fr.Stalls < sf.Stalls || fr.CacheWipes < sf.CacheWipes {
			problems = append(problems, fmt.Sprintf("only %d of %d store outages, %d of %d stalls and %d of %d cache wipes happened before the run ended",
				fr.Outages, sf.Outages, fr.Stalls, sf.Stalls, fr.CacheWipes, sf.CacheWipes))
		}
	}
	fmt.Printf("winner uninterrupted: %s\nwinner with chaos:    %s\n", clean.Winner, rep.Winner)
	if len(problems) > 0 {
		return fmt.Errorf("durability not proven (logs in %s):\n  %s", dir, strings.Join(problems, "\n  "))
	}
	steps, fts := rep.RedoneSteps()
	retried := 0
	for _, n := range rep.Retries {
		retried += n
	}
	fmt.Printf(`chaos: summary
  survived: %d worker SIGKILLs, %d server restarts, %d store outages (%.0fs down), %d store stalls (%.0fs), %d worker cache wipes, %d disk-full windows (%d attempts failed with ENOSPC)
  work lost: %.1fs of activity time in killed attempts (%.2fs per kill); %d fine-tune steps redone over %d interrupted fine-tunes (%.2f per interrupted fine-tune, checkpoint interval %d); %d retried attempts over %d of %d activities
  verified: %d objects in the chaos store, %d in the uninterrupted one, 0 corrupt, 0 temporary, 0 unknown
  identical: winner %s and all %d lineage nodes (sha256 and fitness) equal to the uninterrupted run
  time: uninterrupted %.0fs, with chaos %.0fs
`, len(rep.Kills), rep.ServerRestarts, fr.Outages, fr.Down.Seconds(), fr.Stalls, fr.Stalled.Seconds(), fr.CacheWipes, rep.DiskFaults, rep.ENOSPCAttempts,
		rep.LostActivityTime().Seconds(), rep.LostActivityTime().Seconds()/float64(max(1, len(rep.Kills))), steps, fts, float64(steps)/float64(max(1, fts)), rep.CheckpointStep,
		retried, rep.RetriedActivities, rep.Activities, rep.Store.Objects, clean.Store.Objects, rep.Winner, len(rep.Lineage), clean.Elapsed.Seconds(), rep.Elapsed.Seconds())
	fmt.Println("chaos: PASS — same winner and lineage, store verified, every kill cost at most one checkpoint interval")
	if !keep {
		os.RemoveAll(dir)
	}
	return nil
}
