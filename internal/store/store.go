// Package store is EvoMerge's content-addressed artifact store: model files and
// other blobs addressed by the SHA-256 of their bytes, plus small named
// documents (checkpoint pointers, eval cache entries, run pointers). It runs on
// a local directory (file://DIR) or an S3 bucket (s3://bucket/prefix), verifies
// every object on read, never exposes a half-written object, and keeps a
// size-limited worker-local cache of remote objects.
package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultURL is the store used when none is configured.
const DefaultURL = "file://./.evomerge/store"

// DefaultCacheLimit bounds the worker-local cache of remote objects.
const DefaultCacheLimit = 8 << 30

// MaxNamedSize bounds a named object so a reader never allocates more.
const MaxNamedSize = 64 << 20

// Options tune a store client.
type Options struct {
	// CacheDir holds local copies of remote objects (default ./.evomerge/cache).
	// Unused for file:// stores, whose objects are read in place.
	CacheDir string
	// CacheLimit is the cache size in bytes (default DefaultCacheLimit).
	CacheLimit int64
	// S3Endpoint is the endpoint of an s3:// store whose URL names none
	// (the worker's --s3-endpoint / EVOMERGE_S3_ENDPOINT); the URL's wins.
	S3Endpoint string
}

// Store is a client of one store; safe for concurrent use.
type Store struct {
	b     backend
	cache *cache // nil when the backend is local

	mu       sync.Mutex
	inflight map[string]*sync.Mutex // serialises fetches of one key
	stamps   map[string]fileStamp   // local files verified in this process
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// CorruptError reports an object whose bytes do not match its name.
type CorruptError struct {
	Key       string
	Want, Got string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: object %s is corrupt: content sha256 %s, expected %s", e.Key, e.Got, e.Want)
}

// Open connects to the store at rawURL: "file://DIR", a plain directory path,
// "s3://bucket/prefix[?endpoint=URL&region=R&path_style=BOOL]", or "" for
// DefaultURL.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	s := &Store{inflight: map[string]*sync.Mutex{}, stamps: map[string]fileStamp{}}
	switch {
	case strings.HasPrefix(rawURL, "s3://"):
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("store: bad URL %q: %w", rawURL, err)
		}
		b, err := newS3Backend(ctx, u, opts.S3Endpoint)
		if err != nil {
			return nil, err
		}
		s.b = b
		if opts.CacheDir == "" {
			opts.CacheDir = filepath.Join(".evomerge", "cache")
		}
		if opts.CacheLimit == 0 {
			opts.CacheLimit = DefaultCacheLimit
		}
		if s.cache, err = openCache(opts.CacheDir, opts.CacheLimit); err != nil {
			return nil, err
		}
	case strings.HasPrefix(rawURL, "file://"):
		dir := strings.TrimPrefix(rawURL, "file://")
		if dir == "" {
			return nil, fmt.Errorf("store: %q names no directory", rawURL)
		}
		b, err := newFileBackend(dir)
		if err != nil {
			return nil, err
		}
		s.b = b
	case strings.Contains(rawURL, "://"):
		return nil, fmt.Errorf("store: unsupported URL %q (want file://DIR or s3://bucket/prefix)", rawURL)
	default:
		b, err := newFileBackend(rawURL)
		if err != nil {
			return nil, err
		}
		s.b = b
	}
	return s, nil
}

// Location is where a user opens a content object (a report in a
// browser): its path in a file store, its http(s) URL in an S3 store with
// an http(s) endpoint, "" otherwise.
func (s *Store) Location(kind Kind, ref Ref) string { return s.b.location(kind.key(ref)) }

// String describes the store's location.
func (s *Store) String() string { return s.b.String() }

// Has reports whether the content object exists.
func (s *Store) Has(ctx context.Context, kind Kind, ref Ref) (bool, error) {
	if _, err := ParseRef(string(ref)); err != nil {
		return false, err
	}
	_, err := s.b.stat(ctx, kind.key(ref))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// HashFile returns the reference of a file's bytes.
func HashFile(path string) (Ref, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("store: hash %s: %w", path, err)
	}
	return Ref(refPrefix + hex.EncodeToString(h.Sum(nil))), n, nil
}

// PutFile stores a file's bytes as a content object and returns its
// reference. Storing bytes that are already there costs one hash and one stat.
func (s *Store) PutFile(ctx context.Context, kind Kind, path string) (Ref, error) {
	ref, size, err := HashFile(path)
	if err != nil {
		return "", err
	}
	key := kind.key(ref)
	if n, err := s.b.stat(ctx, key); err == nil && n == size {
		return ref, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	if err := s.b.put(ctx, key, f, size); err != nil {
		return "", err
	}
	if s.cache != nil {
		s.addToCache(key, path, size)
	}
	return ref, nil
}

// addToCache keeps a local copy of a file just uploaded, so the worker that
// produced it does not download it again. Failure only costs a later download.
func (s *Store) addToCache(key, src string, size int64) {
	dst := s.cache.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return
	}
	tmp := filepath.Join(filepath.Dir(dst), tmpMarker+"link-"+filepath.Base(dst))
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		err = writeFileAtomic(dst, func(w io.Writer) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		})
		if err != nil {
			return
		}
	} else if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return
	}
	// A hard link shares bytes with the caller's file, which could still
	// change: re-hash on first use.
	s.cache.added(key, size, false)
	s.cache.unpin(key)
}

// Delete removes a content object (a checkpoint no longer needed); a missing
// one is not an error. Local cached copies go with it.
func (s *Store) Delete(ctx context.Context, kind Kind, ref Ref) error {
	if _, err := ParseRef(string(ref)); err != nil {
		return err
	}
	key := kind.key(ref)
	unlock := s.keyLock(key)
	defer unlock()
	if s.cache != nil {
		s.cache.drop(key)
	}
	return s.b.delete(ctx, key)
}

// Put stores the bytes read from r as a content object.
func (s *Store) Put(ctx context.Context, kind Kind, r io.Reader) (Ref, error) {
	tmp, err := os.CreateTemp("", "evomerge-put-*")
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, ctxReader{ctx, r})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("store: spool upload: %w", err)
	}
	return s.PutFile(ctx, kind, tmp.Name())
}

// Local is a verified content object on this machine's disk. Close it when
// done so the cache may evict it.
type Local struct {
	Path    string
	Size    int64
	release func()
	once    sync.Once
}

// Close releases the object.
func (l *Local) Close() error {
	l.once.Do(func() {
		if l.release != nil {
			l.release()
		}
	})
	return nil
}

func (s *Store) keyLock(key string) func() {
	s.mu.Lock()
	m, ok := s.inflight[key]
	if !ok {
		m = &sync.Mutex{}
		s.inflight[key] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// Fetch returns a local, verified copy of a content object. A missing object
// yields an error wrapping ErrNotFound; one whose bytes do not hash to its
// name yields a *CorruptError.
func (s *Store) Fetch(ctx context.Context, kind Kind, ref Ref) (*Local, error) {
	if _, err := ParseRef(string(ref)); err != nil {
		return nil, err
	}
	key := kind.key(ref)
	unlock := s.keyLock(key)
	defer unlock()
	if p, ok := s.b.localPath(key); ok {
		return s.fetchLocal(key, p, ref)
	}
	return s.fetchRemote(ctx, key, ref)
}

func (s *Store) fetchLocal(key, path string, ref Ref) (*Local, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	stamp := fileStamp{fi.Size(), fi.ModTime()}
	s.mu.Lock()
	known := s.stamps[path] == stamp
	s.mu.Unlock()
	if !known {
		got, _, err := HashFile(path)
		if err != nil {
			return nil, err
		}
		if got != ref {
			return nil, &CorruptError{Key: key, Want: ref.Hex(), Got: got.Hex()}
		}
		s.mu.Lock()
		s.stamps[path] = stamp
		s.mu.Unlock()
	}
	return &Local{Path: path, Size: fi.Size()}, nil
}

func (s *Store) fetchRemote(ctx context.Context, key string, ref Ref) (*Local, error) {
	dst := s.cache.path(key)
	if present, verified := s.cache.pin(key); present {
		if !verified {
			got, _, err := HashFile(dst)
			if err != nil || got != ref {
				s.cache.unpin(key)
				s.cache.drop(key)
				present = false
			} else {
				s.cache.markVerified(key)
			}
		}
		if present {
			fi, err := os.Stat(dst)
			if err == nil {
				return &Local{Path: dst, Size: fi.Size(), release: func() { s.cache.unpin(key) }}, nil
			}
			s.cache.unpin(key)
			s.cache.drop(key)
		}
	}
	size, err := s.download(ctx, key, ref, dst)
	if errors.Is(err, syscall.ENOSPC) && s.cache.evictUnpinned() > 0 {
		// The cache's disk is full, though the cache is under its limit (the disk is shared or smaller):
		// objects nobody holds make room for the one wanted now.
		size, err = s.download(ctx, key, ref, dst)
	}
	if err != nil {
		return nil, err
	}
	s.cache.added(key, size, true)
	return &Local{Path: dst, Size: size, release: func() { s.cache.unpin(key) }}, nil
}

// download copies a remote object into the cache file dst, verifying its hash on the way.
func (s *Store) download(ctx context.Context, key string, ref Ref, dst string) (int64, error) {
	rc, err := s.b.get(ctx, key)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	var size int64
	err = writeFileAtomic(dst, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), ctxReader{ctx, rc})
		if err != nil {
			return fmt.Errorf("store: download %s: %w", key, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != ref.Hex() {
			return &CorruptError{Key: key, Want: ref.Hex(), Got: got}
		}
		size = n
		return nil
	})
	return size, err
}

// Named objects carry their own digest in a one-line header so that they too
// are verified on read and checked by Verify.
const namedMagic = "evomerge-named-v1"

// PutNamed writes a small named object atomically, replacing any previous one.
func (s *Store) PutNamed(ctx context.Context, name string, data []byte) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if len(data) > MaxNamedSize {
		return fmt.Errorf("store: named object %s: %d bytes is above the limit of %d", name, len(data), MaxNamedSize)
	}
	sum := sha256.Sum256(data)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s %s%x %d\n", namedMagic, refPrefix, sum, len(data))
	buf.Write(data)
	return s.b.put(ctx, namedKey(name), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
}

// GetNamed reads and verifies a named object.
func (s *Store) GetNamed(ctx context.Context, name string) ([]byte, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	key := namedKey(name)
	rc, err := s.b.get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readNamed(key, rc)
}

func readNamed(key string, r io.Reader) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, MaxNamedSize+256))
	header, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("store: named object %s: no header line: %w", key, err)
	}
	f := strings.Fields(header)
	if len(f) != 3 || f[0] != namedMagic {
		return nil, fmt.Errorf("store: named object %s: bad header %q", key, strings.TrimSpace(header))
	}
	want, err := ParseRef(f[1])
	if err != nil {
		return nil, fmt.Errorf("store: named object %s: %w", key, err)
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || n < 0 || n > MaxNamedSize {
		return nil, fmt.Errorf("store: named object %s: bad length %q", key, f[2])
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(br, data); err != nil {
		return nil, fmt.Errorf("store: named object %s: truncated: %w", key, err)
	}
	if extra, _ := br.Peek(1); len(extra) > 0 {
		return nil, fmt.Errorf("store: named object %s: bytes after the declared %d", key, n)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != want.Hex() {
		return nil, &CorruptError{Key: key, Want: want.Hex(), Got: got}
	}
	return data, nil
}

// DeleteNamed removes a named object; a missing one is not an error.
func (s *Store) DeleteNamed(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	return s.b.delete(ctx, namedKey(name))
}

// ListNamed returns the names of named objects under prefix ("" for all).
func (s *Store) ListNamed(ctx context.Context, prefix string) ([]string, error) {
	objs, err := s.b.list(ctx, namedDir+"/"+prefix)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, namedDir+"/")
		if ValidateName(name) == nil {
			names = append(names, name)
		}
	}
	return names, nil
}

// List returns every object in the store, temporaries included.
func (s *Store) List(ctx context.Context) ([]ObjectInfo, error) { return s.b.list(ctx, "") }

// Report is the outcome of Verify.
type Report struct {
	Objects   int
	Bytes     int64
	Corrupt   []string // content does not match its name or header
	Temporary []string // left by an interrupted write
	Unknown   []string // keys outside the store's layout
}

// OK is true when nothing is corrupt, half-written or unexpected.
func (r Report) OK() bool { return len(r.Corrupt)+len(r.Temporary)+len(r.Unknown) == 0 }

func (r Report) String() string {
	return fmt.Sprintf("%d objects, %d bytes, %d corrupt %v, %d temporary %v, %d unknown %v",
		r.Objects, r.Bytes, len(r.Corrupt), r.Corrupt, len(r.Temporary), r.Temporary, len(r.Unknown), r.Unknown)
}

// Verify reads every object and checks it against its hash.
func (s *Store) Verify(ctx context.Context) (Report, error) {
	objs, err := s.b.list(ctx, "")
	if err != nil {
		return Report{}, err
	}
	var rep Report
	for _, o := range objs {
		rep.Objects++
		rep.Bytes += o.Size
		base := o.Key[strings.LastIndex(o.Key, "/")+1:]
		switch {
		case strings.HasPrefix(base, tmpMarker):
			rep.Temporary = append(rep.Temporary, o.Key)
			continue
		case strings.HasPrefix(o.Key, namedDir+"/"):
			if ValidateName(strings.TrimPrefix(o.Key, namedDir+"/")) != nil {
				rep.Unknown = append(rep.Unknown, o.Key)
				continue
			}
		default:
			if _, _, ok := kindOfKey(o.Key); !ok {
				rep.Unknown = append(rep.Unknown, o.Key)
				continue
			}
		}
		ok, err := s.verifyObject(ctx, o.Key)
		if err != nil {
			return rep, err
		}
		if !ok {
			rep.Corrupt = append(rep.Corrupt, o.Key)
		}
	}
	return rep, nil
}

func (s *Store) verifyObject(ctx context.Context, key string) (bool, error) {
	rc, err := s.b.get(ctx, key)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if strings.HasPrefix(key, namedDir+"/") {
		_, err := readNamed(key, rc)
		return err == nil, nil
	}
	_, ref, _ := kindOfKey(key)
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, rc}); err != nil {
		return false, fmt.Errorf("store: read %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == ref.Hex(), nil
}

// OpenURL opens one object outside the store for import: a local path,
// file://PATH, or s3://bucket/key (same query parameters and credentials as
// an s3 store). A missing object yields an error wrapping ErrNotFound.
func OpenURL(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	switch {
	case strings.HasPrefix(rawURL, "s3://"):
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("store: bad URL %q: %w", rawURL, err)
		}
		p := strings.Trim(u.Path, "/")
		dir, base := "", p
		if i := strings.LastIndex(p, "/"); i >= 0 {
			dir, base = p[:i], p[i+1:]
		}
		if base == "" {
			return nil, fmt.Errorf("store: %q names no object", u.Redacted())
		}
		u.Path = "/" + dir
		b, err := newS3Backend(ctx, u, "")
		if err != nil {
			return nil, err
		}
		return b.get(ctx, base)
	case strings.Contains(rawURL, "://") && !strings.HasPrefix(rawURL, "file://"):
		return nil, fmt.Errorf("store: unsupported URL %q (want a path, file://PATH or s3://bucket/key)", rawURL)
	}
	p := strings.TrimPrefix(rawURL, "file://")
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("store: %s is a directory", p)
	}
	return f, nil
}
