package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/infra/chaos/stall"
	"github.com/evomerge/evomerge/internal/store/s3test"
)

// The S3 endpoint misbehaves behind a stall proxy — slow connections, refused connections, the server
// stopped and restarted on another port, a response frozen mid-body — and the store rides each out: the
// client retries with backoff, nothing half-written appears, every fetched object verifies.
func TestS3StoreFaults(t *testing.T) {
	srv := s3test.Start(t)
	outer := t
	proxy, err := stall.Start(strings.TrimPrefix(srv.Endpoint, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { proxy.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := fmt.Sprintf("s3://%s/faults?endpoint=http://%s", s3test.Bucket, proxy.Addr())
	s, err := Open(ctx, url, Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	objects := map[Ref][32]byte{}
	put := func(seed uint64) Ref {
		t.Helper()
		data := randomBytes(seed, 1<<20)
		ref, err := s.Put(ctx, Models, bytes.NewReader(data))
		require.NoError(t, err)
		objects[ref] = sha256.Sum256(data)
		return ref
	}
	fetchFresh := func(ref Ref) error {
		t.Helper()
		w, err := Open(ctx, url, Options{CacheDir: t.TempDir()})
		require.NoError(t, err)
		l, err := w.Fetch(ctx, Models, ref)
		if err != nil {
			noTemporaries(t, w.cache.dir)
			return err
		}
		defer l.Close()
		require.Equal(t, objects[ref], fileSum(t, l.Path))
		return nil
	}
	a := put(1)

	t.Run("slow-connections", func(t *testing.T) {
		proxy.Set(stall.Mode{Delay: 300 * time.Millisecond})
		defer proxy.Set(stall.Mode{})
		start := time.Now()
		require.NoError(t, fetchFresh(a))
		put(2)
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	})

	t.Run("refused-for-3s", func(t *testing.T) {
		proxy.Set(stall.Mode{Drop: true})
		go func() { time.Sleep(3 * time.Second); proxy.Set(stall.Mode{}) }()
		start := time.Now()
		b := put(3) // retried by the client until the endpoint answers again
		require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "the outage was not seen")
		require.NoError(t, fetchFresh(b))
		require.Positive(t, proxy.Stats().Dropped)
	})

	t.Run("server-restarted", func(t *testing.T) {
		require.NoError(t, srv.Stop())
		restarted := make(chan *s3test.Server, 1)
		go func() {
			time.Sleep(2 * time.Second)
			s2, err := s3test.Run(context.Background(), srv.Dir, nil)
			if err != nil {
				t.Errorf("restart versitygw: %v", err)
				restarted <- nil
				return
			}
			proxy.SetBackend(strings.TrimPrefix(s2.Endpoint, "http://"))
			restarted <- s2
		}()
		require.NoError(t, fetchFresh(a), "a fetch while the server was down did not ride it out")
		c := put(4)
		s2 := <-restarted
		require.NotNil(t, s2)
		outer.Cleanup(func() { s2.Stop() }) // later subtests use it
		require.NoError(t, fetchFresh(c))
		require.Positive(t, proxy.Stats().BackendDown)
	})

	t.Run("frozen-mid-body", func(t *testing.T) {
		prev := s3BodyIdle
		s3BodyIdle = time.Second
		defer func() { s3BodyIdle = prev }()
		proxy.Set(stall.Mode{FreezeAfter: 64 << 10})
		err := fetchFresh(a)
		proxy.Set(stall.Mode{})
		require.Error(t, err, "a frozen download was not cut")
		require.Contains(t, err.Error(), "stalled connection")
		require.NoError(t, fetchFresh(a), "the retry after the stall")
		require.Positive(t, proxy.Stats().Frozen)
	})

	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%s", rep)
	require.Len(t, objects, 4)
}
