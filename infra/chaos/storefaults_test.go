package chaos

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChaosStoreFaults is the short store-fault version of make chaos: while a run goes on, its S3 server
// is stopped and restarted twice (the workers reach it through the stall proxy, which follows it to its
// new port), the proxy makes every new connection wait for a window, and a worker's local cache is deleted
// under it, with three worker kills among them (the kills also keep the run going while the faults play out). The winner and lineage must be the uninterrupted run's and the
// store must verify.
func TestChaosStoreFaults(t *testing.T) {
	needChaos(t)
	bins := binaries(t)
	ctx := context.Background()
	s3, err := StartFaultyS3(ctx, filepath.Join(t.TempDir(), "s3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s3.Stop)
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg := SmallConfig("storefaults", 42, GenerationsFor(3, 0), 16)
	base := Options{Bins: bins, Config: cfg, Log: tlog{t}, Timeout: 8 * time.Minute}

	o := base
	o.Dir, o.StoreURL = t.TempDir(), s3.StoreURL("clean")
	clean, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	o = base
	o.Dir, o.StoreURL = t.TempDir(), s3.StoreURL("faults")
	o.Kills, o.Seed = 3, 11
	want := StoreFaults{Outages: 2, Stalls: 1, CacheWipes: 1}
	sf := want
	sf.Seed, sf.Span, sf.Log, sf.CacheDirs = 11, FaultSpan(clean.Elapsed, o.Kills), tlog{t}, WorkerCacheDirs(o.Dir)
	fctx, stop := context.WithCancel(ctx)
	done := s3.Inject(fctx, sf)
	rep, err := Run(ctx, o)
	stop()
	fr := <-done
	t.Log(fr.String())
	if rep != nil {
		var b strings.Builder
		rep.Print(&b)
		t.Log("\n" + b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	p := Check(clean, rep, 3, 0)
	if fr.Err != nil {
		p = append(p, "fault injection: "+fr.Err.Error())
	}
	if fr.Outages < want.Outages || fr.Stalls < want.Stalls || fr.CacheWipes < want.CacheWipes {
		p = append(p, "not every store fault happened before the run ended: "+fr.String())
	}
	if fr.Proxy.BackendDown == 0 && fr.Outages > 0 {
		t.Log("no connection arrived while the server was down (the outages fell between store calls)")
	}
	if len(p) > 0 {
		t.Fatalf("durability under store faults not proven:\n  %s", strings.Join(p, "\n  "))
	}
}
