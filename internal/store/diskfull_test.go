package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/faultfs"
	"github.com/evomerge/evomerge/internal/store/s3test"
)

// A full disk, two ways: a real tmpfs that fills up (the kernel's ENOSPC), and an injected write error
// after a byte budget (runs without root). Each returns a directory and a func that gives space back.
type diskFault struct {
	name string
	make func(t *testing.T, size int64) (dir string, spaceReturns func())
}

var diskFaults = []diskFault{
	{"tmpfs", func(t *testing.T, size int64) (string, func()) {
		dir := faultfs.SmallDisk(t, size)
		return dir, func() { faultfs.Resize(t, dir, 64<<20) }
	}},
	{"injected", func(t *testing.T, size int64) (string, func()) {
		dir := t.TempDir()
		restore := injectFullDisk(dir, size)
		t.Cleanup(restore)
		return dir, restore
	}},
}

// injectFullDisk makes writes of temporaries under dir fail with ENOSPC once budget bytes were written to
// them in total, as a disk of that size would. It returns the func that removes the fault.
func injectFullDisk(dir string, budget int64) func() {
	prev := tempWriter
	used := int64(0)
	tempWriter = func(f *os.File) io.Writer {
		if !strings.HasPrefix(f.Name(), dir+string(filepath.Separator)) {
			return prev(f)
		}
		return &fullDiskWriter{f: f, left: func(n int64) int64 {
			if used+n > budget {
				n = max(budget-used, 0)
			}
			used += n
			return n
		}}
	}
	return func() { tempWriter = prev }
}

type fullDiskWriter struct {
	f    *os.File
	left func(n int64) int64
}

func (w *fullDiskWriter) Write(p []byte) (int, error) {
	n := int(w.left(int64(len(p))))
	k, err := w.f.Write(p[:n])
	if err == nil && n < len(p) {
		err = &fs.PathError{Op: "write", Path: w.f.Name(), Err: syscall.ENOSPC}
	}
	return k, err
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// noTemporaries fails if a write left anything half-made under dir.
func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), tmpMarker) {
			t.Errorf("partial file left behind: %s", p)
		}
		return nil
	})
}

// A file store whose disk fills mid-write fails that write with an error naming the object's path and the
// full directory, leaves no partial object, and stores it once space returns.
func TestFileStoreDiskFull(t *testing.T) {
	for _, df := range diskFaults {
		t.Run(df.name, func(t *testing.T) {
			ctx := context.Background()
			root, spaceReturns := df.make(t, 256<<10)
			s, err := Open(ctx, "file://"+root, Options{})
			require.NoError(t, err)
			data := randomBytes(1, 600<<10)
			src := filepath.Join(t.TempDir(), "model.gguf")
			require.NoError(t, os.WriteFile(src, data, 0o644))
			ref, _, err := HashFile(src)
			require.NoError(t, err)

			_, err = s.PutFile(ctx, Models, src)
			require.Error(t, err)
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.Contains(t, err.Error(), filepath.Join(root, "models"), "the error names the full directory")
			require.Contains(t, err.Error(), ref.Hex(), "the error names the object")
			noTemporaries(t, root)
			has, err := s.Has(ctx, Models, ref)
			require.NoError(t, err)
			require.False(t, has, "a partial object is visible")

			spaceReturns()
			got, err := s.PutFile(ctx, Models, src)
			require.NoError(t, err)
			require.Equal(t, ref, got)
			l, err := s.Fetch(ctx, Models, ref)
			require.NoError(t, err)
			require.NoError(t, l.Close())
			rep, err := s.Verify(ctx)
			require.NoError(t, err)
			require.True(t, rep.OK(), "%s", rep)
		})
	}
}

// A worker whose cache disk is full cannot fetch: the error names its cache path and nothing partial stays
// in the cache; another worker fetches the same object, and the first succeeds once space returns. When the
// cache is under its own limit but the disk is full, entries nobody holds make room.
func TestS3CacheDiskFull(t *testing.T) {
	srv := s3test.Start(t)
	for _, df := range diskFaults {
		t.Run(df.name, func(t *testing.T) {
			ctx := context.Background()
			url := srv.StoreURL("diskfull-" + df.name)
			other, err := Open(ctx, url, Options{CacheDir: t.TempDir()})
			require.NoError(t, err)
			data := randomBytes(2, 600<<10)
			ref, err := other.Put(ctx, Models, bytes.NewReader(data))
			require.NoError(t, err)

			cacheDir, spaceReturns := df.make(t, 256<<10)
			full, err := Open(ctx, url, Options{CacheDir: cacheDir})
			require.NoError(t, err)
			_, err = full.Fetch(ctx, Models, ref)
			require.Error(t, err)
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.Contains(t, err.Error(), filepath.Join(cacheDir, "models"), "the error names the cache directory")
			noTemporaries(t, cacheDir)
			require.Zero(t, full.cache.size())

			// Another worker (a fresh cache) gets the object, verified.
			w2, err := Open(ctx, url, Options{CacheDir: t.TempDir()})
			require.NoError(t, err)
			l, err := w2.Fetch(ctx, Models, ref)
			require.NoError(t, err)
			require.Equal(t, sha256.Sum256(data), fileSum(t, l.Path))
			require.NoError(t, l.Close())

			// Space returns: the same worker fetches it.
			spaceReturns()
			l, err = full.Fetch(ctx, Models, ref)
			require.NoError(t, err)
			require.Equal(t, sha256.Sum256(data), fileSum(t, l.Path))
			require.NoError(t, l.Close())
		})
	}
	t.Run("evicts-unpinned-when-the-disk-is-full", func(t *testing.T) {
		ctx := context.Background()
		url := srv.StoreURL("diskfull-evict")
		up, err := Open(ctx, url, Options{CacheDir: t.TempDir()})
		require.NoError(t, err)
		a, err := up.Put(ctx, Blobs, bytes.NewReader(randomBytes(3, 400<<10)))
		require.NoError(t, err)
		b, err := up.Put(ctx, Blobs, bytes.NewReader(randomBytes(4, 400<<10)))
		require.NoError(t, err)
		cacheDir, _ := diskFaults[0].make(t, 640<<10) // room for one of them, under the 8 GiB cache limit
		s, err := Open(ctx, url, Options{CacheDir: cacheDir})
		require.NoError(t, err)
		la, err := s.Fetch(ctx, Blobs, a)
		require.NoError(t, err)
		// While a is held, b cannot be made room for.
		_, err = s.Fetch(ctx, Blobs, b)
		require.ErrorIs(t, err, syscall.ENOSPC)
		noTemporaries(t, cacheDir)
		require.NoError(t, la.Close())
		lb, err := s.Fetch(ctx, Blobs, b)
		require.NoError(t, err, "the unpinned entry was not evicted to make room")
		require.NoError(t, lb.Close())
		_, err = os.Stat(s.cache.path(Blobs.key(a)))
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
}

// A worker whose cache is deleted under it (an operator cleaning the disk) refetches and verifies.
func TestS3CacheWipedMidRun(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	url := srv.StoreURL("wiped")
	cacheDir := t.TempDir()
	s, err := Open(ctx, url, Options{CacheDir: cacheDir})
	require.NoError(t, err)
	data := randomBytes(5, 100<<10)
	ref, err := s.Put(ctx, Models, bytes.NewReader(data))
	require.NoError(t, err)
	l, err := s.Fetch(ctx, Models, ref)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, os.RemoveAll(cacheDir))
	l, err = s.Fetch(ctx, Models, ref)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), fileSum(t, l.Path))
	require.NoError(t, l.Close())
	// A cached file replaced by other bytes of the same size is caught by the hash, not served.
	require.NoError(t, os.WriteFile(l.Path, randomBytes(6, len(data)), 0o644))
	s2, err := Open(ctx, url, Options{CacheDir: cacheDir})
	require.NoError(t, err)
	l, err = s2.Fetch(ctx, Models, ref)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), fileSum(t, l.Path))
	require.NoError(t, l.Close())
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}
