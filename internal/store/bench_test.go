package store

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/store/s3test"
)

// benchModel writes an 8 MiB random file (a tiny model's size).
func benchModel(b *testing.B) (string, int64) {
	p := filepath.Join(b.TempDir(), "m.gguf")
	buf := make([]byte, 8<<20)
	rand.Read(buf)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	return p, int64(len(buf))
}

// BenchmarkFetch compares reading a model in place (file://), from the
// worker cache (s3://, verified once) and downloading it (s3://, empty cache).
func BenchmarkFetch(b *testing.B) {
	ctx := context.Background()
	src, size := benchModel(b)
	srv := s3test.Start(b)
	run := func(b *testing.B, s *Store, ref Ref, fresh func() *Store) {
		b.SetBytes(size)
		for b.Loop() {
			st := s
			if fresh != nil {
				st = fresh()
			}
			l, err := st.Fetch(ctx, Models, ref)
			if err != nil {
				b.Fatal(err)
			}
			l.Close()
		}
	}
	file, err := Open(ctx, b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	ref, err := file.PutFile(ctx, Models, src)
	if err != nil {
		b.Fatal(err)
	}
	s3, err := Open(ctx, srv.StoreURL("bench"), Options{CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s3.PutFile(ctx, Models, src); err != nil {
		b.Fatal(err)
	}
	b.Run("file", func(b *testing.B) { run(b, file, ref, nil) })
	b.Run("s3-cached", func(b *testing.B) { run(b, s3, ref, nil) })
	b.Run("s3-download", func(b *testing.B) {
		run(b, nil, ref, func() *Store {
			st, err := Open(ctx, srv.StoreURL("bench"), Options{CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			return st
		})
	})
}
