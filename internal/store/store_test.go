package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/store/s3test"
)

// backends runs fn against a file:// store and a store on a real S3 server.
func backends(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("file", func(t *testing.T) {
		s, err := Open(context.Background(), "file://"+t.TempDir(), Options{})
		require.NoError(t, err)
		fn(t, s)
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		s, err := Open(context.Background(), srv.StoreURL(strings.ReplaceAll(t.Name(), "/", "-")),
			Options{CacheDir: t.TempDir(), CacheLimit: 1 << 20})
		require.NoError(t, err)
		fn(t, s)
	})
}

func refOf(b []byte) Ref {
	sum := sha256.Sum256(b)
	return Ref("sha256:" + hex.EncodeToString(sum[:]))
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "in.bin")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func TestContentRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		data := bytes.Repeat([]byte("gguf-ish bytes "), 1000)
		ref, err := s.PutFile(ctx, Models, writeTemp(t, data))
		require.NoError(t, err)
		require.Equal(t, refOf(data), ref)

		has, err := s.Has(ctx, Models, ref)
		require.NoError(t, err)
		require.True(t, has)
		has, err = s.Has(ctx, Blobs, ref)
		require.NoError(t, err)
		require.False(t, has, "kinds are separate spaces")

		// Putting the same bytes again is idempotent.
		ref2, err := s.Put(ctx, Models, bytes.NewReader(data))
		require.NoError(t, err)
		require.Equal(t, ref, ref2)

		l, err := s.Fetch(ctx, Models, ref)
		require.NoError(t, err)
		got, err := os.ReadFile(l.Path)
		require.NoError(t, err)
		require.Equal(t, data, got)
		require.Equal(t, int64(len(data)), l.Size)
		require.NoError(t, l.Close())

		_, err = s.Fetch(ctx, Blobs, refOf([]byte("absent")))
		require.ErrorIs(t, err, ErrNotFound)

		objs, err := s.List(ctx)
		require.NoError(t, err)
		require.Equal(t, []ObjectInfo{{Key: "models/" + ref.Hex() + ".gguf", Size: int64(len(data))}}, objs)

		require.NoError(t, s.Delete(ctx, Models, ref))
		require.NoError(t, s.Delete(ctx, Models, ref), "deleting twice is fine")
		has, err = s.Has(ctx, Models, ref)
		require.NoError(t, err)
		require.False(t, has)
		_, err = s.Fetch(ctx, Models, ref)
		require.ErrorIs(t, err, ErrNotFound)
	})
}

func TestNamedObjects(t *testing.T) {
	backends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		require.NoError(t, s.PutNamed(ctx, "runs/demo/latest.json", []byte(`{"gen":1}`)))
		require.NoError(t, s.PutNamed(ctx, "runs/demo/latest.json", []byte(`{"gen":2}`)))
		require.NoError(t, s.PutNamed(ctx, "ckpt/job-1", nil))
		got, err := s.GetNamed(ctx, "runs/demo/latest.json")
		require.NoError(t, err)
		require.Equal(t, `{"gen":2}`, string(got))
		got, err = s.GetNamed(ctx, "ckpt/job-1")
		require.NoError(t, err)
		require.Empty(t, got)

		names, err := s.ListNamed(ctx, "runs/")
		require.NoError(t, err)
		require.Equal(t, []string{"runs/demo/latest.json"}, names)

		_, err = s.GetNamed(ctx, "runs/other")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.DeleteNamed(ctx, "ckpt/job-1"))
		_, err = s.GetNamed(ctx, "ckpt/job-1")
		require.ErrorIs(t, err, ErrNotFound)

		rep, err := s.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), rep.String())
		require.Equal(t, 1, rep.Objects)
	})
}

func TestNamesCannotEscape(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir(), Options{})
	require.NoError(t, err)
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", `a\b`, "a/.tmp-1", "sp ace", "a/..", strings.Repeat("a", 600)} {
		err := s.PutNamed(context.Background(), bad, []byte("x"))
		require.Error(t, err, "name %q", bad)
		require.Contains(t, err.Error(), "object name")
		_, err = s.GetNamed(context.Background(), bad)
		require.Error(t, err, "name %q", bad)
	}
	for _, bad := range []string{"sha256:", "md5:00", "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("g", 64)} {
		_, err := s.Fetch(context.Background(), Models, Ref(bad))
		require.Error(t, err, "ref %q", bad)
		require.Contains(t, err.Error(), "reference")
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	ctx := context.Background()
	for url, want := range map[string]string{
		"gs://bucket/x":                 "unsupported URL",
		"file://":                       "names no directory",
		"s3:///prefix":                  "missing bucket",
		"s3://b/p?endpont=http://x":     `unknown query parameter "endpont"`,
		"s3://b/p?path_style=maybe":     "path_style",
		"s3://b/../p?endpoint=http://x": "prefix",
	} {
		_, err := Open(ctx, url, Options{CacheDir: t.TempDir()})
		require.Error(t, err, url)
		require.Contains(t, err.Error(), want, url)
	}
}

func TestVerifyFindsCorruptionAndTemporaries(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, "file://"+dir, Options{})
	require.NoError(t, err)
	good := []byte("good model")
	ref, err := s.Put(ctx, Models, bytes.NewReader(good))
	require.NoError(t, err)
	bad, err := s.Put(ctx, Blobs, bytes.NewReader([]byte("checkpoint")))
	require.NoError(t, err)
	require.NoError(t, s.PutNamed(ctx, "p", []byte("pointer")))

	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())

	// Flip the blob's bytes, damage the named object, leave a temporary.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blobs", bad.Hex()), []byte("checkpoinT"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "named", "p"), []byte("evomerge-named-v1 "+string(refOf([]byte("pointer")))+" 7\npointeR"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "models", ".tmp-123"), []byte("half"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stray.txt"), []byte("?"), 0o644))

	rep, err = s.Verify(ctx)
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Equal(t, []string{"blobs/" + bad.Hex(), "named/p"}, rep.Corrupt)
	require.Equal(t, []string{"models/.tmp-123"}, rep.Temporary)
	require.Equal(t, []string{"stray.txt"}, rep.Unknown)

	// Reads verify too.
	_, err = s.GetNamed(ctx, "p")
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "named/p", ce.Key)
	_, err = s.Fetch(ctx, Blobs, bad)
	require.ErrorAs(t, err, &ce)
	l, err := s.Fetch(ctx, Models, ref)
	require.NoError(t, err)
	l.Close()
}

func TestFetchDetectsLocalTampering(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	require.NoError(t, err)
	ref, err := s.Put(ctx, Models, strings.NewReader("weights v1"))
	require.NoError(t, err)
	l, err := s.Fetch(ctx, Models, ref)
	require.NoError(t, err)
	l.Close()
	// Same size, different bytes: the changed mtime forces a re-hash.
	p := filepath.Join(dir, "models", ref.Hex()+".gguf")
	require.NoError(t, os.WriteFile(p, []byte("weights v2"), 0o644))
	_, err = s.Fetch(ctx, Models, ref)
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
}

func TestNamedReaderBoundsAllocation(t *testing.T) {
	for _, body := range []string{
		"",
		"no header",
		"evomerge-named-v1 sha256:" + strings.Repeat("0", 64) + " 99999999999\n",
		"evomerge-named-v1 sha256:" + strings.Repeat("0", 64) + " -1\n",
		"evomerge-named-v1 sha256:" + strings.Repeat("0", 64) + " 10\nshort",
		"other-v9 sha256:" + strings.Repeat("0", 64) + " 0\n",
	} {
		_, err := readNamed("named/x", strings.NewReader(body))
		require.Error(t, err, "%q", body)
		require.Contains(t, err.Error(), "named/x")
	}
}

func TestS3CacheEvictsLeastRecentlyUsed(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	cacheDir := t.TempDir()
	s, err := Open(ctx, srv.StoreURL("lru"), Options{CacheDir: cacheDir, CacheLimit: 2500})
	require.NoError(t, err)
	var refs []Ref
	for i := range 4 {
		data := bytes.Repeat([]byte{byte('a' + i)}, 1000)
		ref, err := s.Put(ctx, Blobs, bytes.NewReader(data))
		require.NoError(t, err)
		refs = append(refs, ref)
	}
	// Uploads were kept locally, but only 2 fit in 2500 bytes.
	require.LessOrEqual(t, s.cache.size(), int64(2500))

	// A fresh client (new process) downloads, verifies and caches.
	s2, err := Open(ctx, srv.StoreURL("lru"), Options{CacheDir: t.TempDir(), CacheLimit: 2500})
	require.NoError(t, err)
	fetch := func(i int) {
		l, err := s2.Fetch(ctx, Blobs, refs[i])
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
	fetch(0)
	fetch(1)
	fetch(0) // 0 is now more recent than 1
	fetch(2) // evicts 1
	cached := func(i int) bool {
		_, err := os.Stat(s2.cache.path(Blobs.key(refs[i])))
		return err == nil
	}
	require.True(t, cached(0))
	require.False(t, cached(1))
	require.True(t, cached(2))

	// A pinned entry survives pressure beyond the limit.
	l, err := s2.Fetch(ctx, Blobs, refs[3])
	require.NoError(t, err)
	fetch(1)
	fetch(0)
	require.True(t, cached(3), "pinned entry evicted")
	require.NoError(t, l.Close())
	require.LessOrEqual(t, s2.cache.size(), int64(2500))
}

func TestS3CorruptRemoteObjectIsRejected(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s, err := Open(ctx, srv.StoreURL("corrupt"), Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	// Write wrong bytes under a content name, as a broken uploader might.
	claimed := refOf([]byte("the real thing"))
	require.NoError(t, s.b.put(ctx, Models.key(claimed), bytes.NewReader([]byte("something else")), 14))
	_, err = s.Fetch(ctx, Models, claimed)
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{Models.key(claimed)}, rep.Corrupt)
	// Nothing half-written is left in the cache.
	entries, _ := filepath.Glob(filepath.Join(s.cache.dir, "models", "*"))
	require.Empty(t, entries)
}

func TestConcurrentFetchesShareOneDownload(t *testing.T) {
	backends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		ref, err := s.Put(ctx, Models, bytes.NewReader(bytes.Repeat([]byte("x"), 100000)))
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := s.Fetch(ctx, Models, ref)
				if err == nil {
					if fi, serr := os.Stat(l.Path); serr != nil || fi.Size() != 100000 {
						err = fmt.Errorf("bad local copy: %v", serr)
					}
					l.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
	})
}

func TestOpenURLForImports(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "a.gguf")
	require.NoError(t, os.WriteFile(p, []byte("GGUF local"), 0o644))
	for _, u := range []string{p, "file://" + p} {
		rc, err := OpenURL(ctx, u)
		require.NoError(t, err, u)
		b, _ := io.ReadAll(rc)
		rc.Close()
		require.Equal(t, "GGUF local", string(b))
	}
	_, err := OpenURL(ctx, filepath.Join(dir, "missing.gguf"))
	require.ErrorIs(t, err, ErrNotFound)
	_, err = OpenURL(ctx, dir)
	require.ErrorContains(t, err, "directory")
	_, err = OpenURL(ctx, "https://example.com/a.gguf")
	require.ErrorContains(t, err, "unsupported URL")

	// An object in a bucket, outside any store layout.
	srv := s3test.Start(t)
	s, err := Open(ctx, srv.StoreURL("imports"), Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	require.NoError(t, s.b.put(ctx, "models/base.gguf", strings.NewReader("GGUF remote"), 11))
	rc, err := OpenURL(ctx, fmt.Sprintf("s3://%s/imports/models/base.gguf?endpoint=%s", s3test.Bucket, srv.Endpoint))
	require.NoError(t, err)
	b, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, "GGUF remote", string(b))
	_, err = OpenURL(ctx, fmt.Sprintf("s3://%s/imports/models/none.gguf?endpoint=%s", s3test.Bucket, srv.Endpoint))
	require.ErrorIs(t, err, ErrNotFound)
}

// A temporary left by a writer killed mid-write is removed when a store is next opened on the directory,
// once it is old enough that no live writer can own it.
func TestFileStoreRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "blobs"), 0o755))
	stale := filepath.Join(dir, "blobs", ".tmp-stale")
	fresh := filepath.Join(dir, "blobs", ".tmp-fresh")
	require.NoError(t, os.WriteFile(stale, []byte("half"), 0o644))
	require.NoError(t, os.WriteFile(fresh, []byte("half"), 0o644))
	old := time.Now().Add(-2 * staleTemporary)
	require.NoError(t, os.Chtimes(stale, old, old))
	_, err := Open(context.Background(), "file://"+dir, Options{})
	require.NoError(t, err)
	_, err = os.Stat(stale)
	require.True(t, os.IsNotExist(err), "stale temporary still there")
	_, err = os.Stat(fresh)
	require.NoError(t, err, "a fresh temporary (a live writer's) was removed")
}
