package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/evomerge/evomerge/internal/atomicfile"
)

// fileBackend keeps objects as files under a root directory. Writes go to a
// temporary file in the destination directory and are renamed into place, so
// an object either exists complete or not at all.
type fileBackend struct {
	root string
}

func newFileBackend(root string) (*fileBackend, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store: file root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("store: create root: %w", err)
	}
	removeStaleTemporaries(abs, staleTemporary)
	return &fileBackend{root: abs}, nil
}

// staleTemporary is how old a temporary file must be before a new store instance removes it. A process
// killed mid-write (SIGKILL, preemption) leaves its temporary behind; a live writer's temporary is younger.
const staleTemporary = time.Hour

// removeStaleTemporaries deletes temporaries under root last modified more than maxAge ago. Errors are
// ignored: a temporary that cannot be removed now is reported by Verify and tried again next time.
func removeStaleTemporaries(root string, maxAge time.Duration) {
	cutoff := time.Now().Add(-maxAge)
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), tmpMarker) {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().Before(cutoff) {
			os.Remove(path)
		}
		return nil
	})
}

func (b *fileBackend) String() string { return "file://" + b.root }

func (b *fileBackend) path(key string) string {
	return filepath.Join(b.root, filepath.FromSlash(key))
}

func (b *fileBackend) localPath(key string) (string, bool) { return b.path(key), true }

func (b *fileBackend) location(key string) string { return b.path(key) }

func (b *fileBackend) put(ctx context.Context, key string, src io.ReadSeeker, size int64) error {
	dst := b.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("store: %s: %w", key, err)
	}
	return writeFileAtomic(dst, func(w io.Writer) error {
		n, err := io.Copy(w, ctxReader{ctx, src})
		if err == nil && n != size {
			err = fmt.Errorf("store: %s: wrote %d bytes, expected %d", key, n, size)
		}
		return err
	})
}

// tempWriter is where writeFileAtomic's bytes go. Tests wrap it to inject write faults (a full disk) where
// they cannot make a real one.
var tempWriter = func(f *os.File) io.Writer { return f }

// writeFileAtomic writes dst through a temporary sibling (atomicfile: its name starts with tmpMarker, so the
// sweep finds a crashed write). A failed write leaves nothing behind, and a full disk is reported with the
// destination and its directory, so the operator knows which directory filled up.
func writeFileAtomic(dst string, write func(io.Writer) error) error {
	if _, err := atomicfile.WriteTo(dst, tempWriter, write); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (b *fileBackend) get(_ context.Context, key string) (io.ReadCloser, error) {
	f, err := os.Open(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return f, nil
}

func (b *fileBackend) stat(_ context.Context, key string) (int64, error) {
	fi, err := os.Stat(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("store: %s is not a regular file", key)
	}
	return fi.Size(), nil
}

func (b *fileBackend) delete(_ context.Context, key string) error {
	err := os.Remove(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (b *fileBackend) list(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", b.root, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
