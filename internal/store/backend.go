package store

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("store: object not found")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key  string
	Size int64
}

// backend is the raw object space under the store root. Keys are already
// validated slash-separated relative paths.
type backend interface {
	// put stores size bytes from src under key; readers never see a partial object.
	put(ctx context.Context, key string, src io.ReadSeeker, size int64) error
	// get opens the object; a missing one yields ErrNotFound.
	get(ctx context.Context, key string) (io.ReadCloser, error)
	// stat returns the object's size or ErrNotFound.
	stat(ctx context.Context, key string) (int64, error)
	delete(ctx context.Context, key string) error
	// list returns every object whose key starts with prefix, including
	// temporaries left by interrupted writes, sorted by key.
	list(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// localPath is the object's path on this machine when the backend is a
	// local directory, so large files need no copy.
	localPath(key string) (string, bool)
	// location is where a user opens the object: a path for a file store,
	// an http(s) URL for S3 behind an http(s) endpoint; "" when neither.
	location(key string) string
	String() string
}
