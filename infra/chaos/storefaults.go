package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evomerge/evomerge/infra/chaos/stall"
	"github.com/evomerge/evomerge/internal/store/s3test"
)

// FaultyS3 is versitygw behind a stall proxy: workers reach the store only through the proxy, so the
// harness can stop and restart the server (on another port) and make connections slow without the workers'
// store URL changing.
type FaultyS3 struct {
	dir   string
	srv   *s3test.Server
	proxy *stall.Proxy
}

// StartFaultyS3 starts versitygw with its data in dir and the proxy in front of it.
func StartFaultyS3(ctx context.Context, dir string) (*FaultyS3, error) {
	srv, err := s3test.Run(ctx, dir, nil)
	if err != nil {
		return nil, err
	}
	p, err := stall.Start(strings.TrimPrefix(srv.Endpoint, "http://"))
	if err != nil {
		srv.Stop()
		return nil, err
	}
	return &FaultyS3{dir: dir, srv: srv, proxy: p}, nil
}

// StoreURL is a store URL for prefix, through the proxy.
func (f *FaultyS3) StoreURL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=http://%s", s3test.Bucket, prefix, f.proxy.Addr())
}

// Env is what a process needs to authenticate.
func (f *FaultyS3) Env() []string { return f.srv.Env() }

// Stop ends the proxy and the server.
func (f *FaultyS3) Stop() {
	f.proxy.Close()
	if f.srv != nil {
		f.srv.Stop()
	}
}

// StoreFaults says which store faults to inject during a run, at moments drawn from Seed within Span.
type StoreFaults struct {
	Outages int // the server is SIGKILLed, stays down 2-10 s, and restarts on its data
	Stalls  int // for 5-15 s every new connection waits 2 s before it is forwarded
	// CacheWipes: a worker's local cache directory (one of CacheDirs, drawn) is deleted under it; its next
	// fetches download and verify again.
	CacheWipes int
	CacheDirs  []string
	Seed       uint64
	Span       time.Duration
	Log        io.Writer
}

// StoreFaultReport is what happened.
type StoreFaultReport struct {
	Outages, Stalls, CacheWipes int
	Down, Stalled               time.Duration
	Proxy                       stall.Stats
	Wiped                       []string // cache directories deleted, in order
	Err                         error
}

func (r StoreFaultReport) String() string {
	s := fmt.Sprintf("store faults: %d outages (%.0fs down), %d stalls (%.0fs), %d worker caches wiped; proxy: %d connections, %d could not reach the server",
		r.Outages, r.Down.Seconds(), r.Stalls, r.Stalled.Seconds(), r.CacheWipes, r.Proxy.Accepted, r.Proxy.BackendDown)
	if r.Err != nil {
		s += fmt.Sprintf("; error: %v", r.Err)
	}
	return s
}

// Inject runs the faults until all happened or ctx ends, then reports on the returned channel.
func (f *FaultyS3) Inject(ctx context.Context, sf StoreFaults) <-chan StoreFaultReport {
	out := make(chan StoreFaultReport, 1)
	logf := func(format string, a ...any) {
		if sf.Log != nil {
			fmt.Fprintf(sf.Log, "chaos: "+format+"\n", a...)
		}
	}
	go func() {
		var rep StoreFaultReport
		defer func() { rep.Proxy = f.proxy.Stats(); out <- rep }()
		rng := rand.New(rand.NewPCG(sf.Seed, 0x5709e))
		const outage, stallWindow, wipe = 0, 1, 2
		var kinds []int
		for range sf.Outages {
			kinds = append(kinds, outage)
		}
		for range sf.Stalls {
			kinds = append(kinds, stallWindow)
		}
		if len(sf.CacheDirs) > 0 {
			for range sf.CacheWipes {
				kinds = append(kinds, wipe)
			}
		}
		rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		n := max(len(kinds), 1)
		gap := sf.Span / time.Duration(n)
		sleep := func(d time.Duration) bool {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(d):
				return true
			}
		}
		for _, kind := range kinds {
			if !sleep(gap/2 + time.Duration(rng.Int64N(int64(gap)+1))) {
				return
			}
			switch kind {
			case wipe:
				dir := sf.CacheDirs[rng.IntN(len(sf.CacheDirs))]
				logf("cache wipe %d: deleting %s", rep.CacheWipes+1, dir)
				if err := os.RemoveAll(dir); err != nil {
					rep.Err = err
					return
				}
				rep.CacheWipes++
				rep.Wiped = append(rep.Wiped, dir)
				continue
			case outage:
				down := 2*time.Second + time.Duration(rng.Int64N(int64(8*time.Second)))
				logf("store outage %d: versitygw stopped for %.1fs", rep.Outages+1, down.Seconds())
				if err := f.srv.Stop(); err != nil {
					rep.Err = err
					return
				}
				sleep(down)
				srv, err := s3test.Run(context.WithoutCancel(ctx), f.dir, nil)
				if err != nil {
					rep.Err = fmt.Errorf("restart versitygw: %w", err)
					return
				}
				f.srv = srv
				f.proxy.SetBackend(strings.TrimPrefix(srv.Endpoint, "http://"))
				rep.Outages++
				rep.Down += down
				logf("store outage %d over: versitygw back at %s", rep.Outages, srv.Endpoint)
				continue
			}
			d := 5*time.Second + time.Duration(rng.Int64N(int64(10*time.Second)))
			logf("store stall %d: new connections wait 2s, for %.1fs", rep.Stalls+1, d.Seconds())
			f.proxy.Set(stall.Mode{Delay: 2 * time.Second})
			ok := sleep(d)
			f.proxy.Set(stall.Mode{})
			if !ok {
				return
			}
			rep.Stalls++
			rep.Stalled += d
		}
	}()
	return out
}

// Refetched counts the files each wiped cache directory holds again (the worker fetched them from the
// store anew and verified their hashes on the way in): "dir: N files".
func (r StoreFaultReport) Refetched() []string {
	var out []string
	seen := map[string]bool{}
	for _, dir := range r.Wiped {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		n := 0
		_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return nil
		})
		out = append(out, fmt.Sprintf("%s: %d files fetched again and verified after the wipe", dir, n))
	}
	return out
}

// WorkerCacheDirs are the local cache directories of the harness's workers under dir (Options.Dir).
func WorkerCacheDirs(dir string) []string {
	var out []string
	for _, name := range WorkerNames {
		out = append(out, filepath.Join(dir, "worker-"+name, "cache"))
	}
	return out
}

// GenerationsFor sizes SmallConfig's run so that every requested kill and server restart can land before
// it ends (restarts come between kills, so kills set the length). Its three children per generation run
// nine activities (merge, fine-tune, evaluate), each killed at most twice, but an uninterrupted generation
// takes about 2 s on 2 cores while a killed attempt is retried only after the 10 s heartbeat timeout, so
// the rest of the generation finishes meanwhile and kills come in pairs on one activity: with 2 cpu and 2
// gpu worker processes 12 kills landed in 7 generations (1.7 per generation). It plans 1.5 per
// generation and two generations to spare; extra generations cost about 2 s each once the chaos is over.
func GenerationsFor(kills, restarts int) int {
	n := max(kills, restarts)
	return max(3, (2*n+2)/3+2)
}

// perKill is about how long one kill of the chaos run takes on 2 cores: the drawn pause, waiting for a
// wanted phase, and the killed attempt's 10 s heartbeat timeout (measured: 11-13 s; less here so the
// faults do not run past the end of the run).
const perKill = 8 * time.Second

// FaultSpan is the time over which store faults are spread during a chaos run with kills: most of the
// uninterrupted run's duration plus the kills' own time, so the faults fall among the kills instead of
// all in the first minute.
func FaultSpan(clean time.Duration, kills int) time.Duration {
	return (clean + time.Duration(kills)*perKill) * 8 / 10
}
