package eval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/evomerge/evomerge/internal/atomicfile"
)

// CacheKey identifies one task score of one model. Version covers the data
// bytes, the prompt formatting and the scorer, so stale scores are never
// reused after any of them changes.
type CacheKey struct {
	Model   string `json:"model"`
	Task    string `json:"task"`
	Version string `json:"version"`
	N       int    `json:"n"`
	Seed    uint64 `json:"seed"`
	Fewshot int    `json:"fewshot"`
}

// Hash is the hex SHA-256 of the key's canonical JSON.
func (k CacheKey) Hash() string {
	b, _ := json.Marshal(k)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Cache stores task results by key.
type Cache interface {
	// Get returns the stored result and true, or false when there is none.
	Get(key CacheKey) (TaskResult, bool, error)
	Put(key CacheKey, r TaskResult) error
}

// DirCache returns a Cache in directory dir (created on first Put): one
// JSON file per key, under a sub-directory per model, written to a
// temporary file and renamed so a crash never leaves a half-written entry.
func DirCache(dir string) Cache { return &dirCache{dir: dir} }

type dirCache struct{ dir string }

var modelHex = regexp.MustCompile(`^[0-9a-f]{16,128}$`)

// modelDir turns "sha256:<hex>" or "<hex>" into a safe directory name.
func modelDir(model string) (string, error) {
	h := strings.TrimPrefix(model, "sha256:")
	if !modelHex.MatchString(h) {
		return "", fmt.Errorf("cache: model hash %q is not a lowercase hex sha256", model)
	}
	return h, nil
}

func (c *dirCache) path(key CacheKey) (string, error) {
	m, err := modelDir(key.Model)
	if err != nil {
		return "", err
	}
	return filepath.Join(c.dir, m, key.Hash()+".json"), nil
}

type cacheEntry struct {
	Key    CacheKey   `json:"key"`
	Result TaskResult `json:"result"`
}

// Get reads an entry. A file that exists but does not hold this key is an
// error naming the file, not a silent miss.
func (c *dirCache) Get(key CacheKey) (TaskResult, bool, error) {
	p, err := c.path(key)
	if err != nil {
		return TaskResult{}, false, err
	}
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return TaskResult{}, false, nil
	}
	if err != nil {
		return TaskResult{}, false, fmt.Errorf("cache: %w", err)
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return TaskResult{}, false, fmt.Errorf("cache: %s: %w", p, err)
	}
	if e.Key != key {
		return TaskResult{}, false, fmt.Errorf("cache: %s holds key %+v, not %+v", p, e.Key, key)
	}
	return e.Result, true, nil
}

// Put writes an entry atomically.
func (c *dirCache) Put(key CacheKey, r TaskResult) error {
	p, err := c.path(key)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(cacheEntry{Key: key, Result: r}, "", "  ")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return writeAtomic(p, b)
}

func writeAtomic(path string, data []byte) error {
	if _, err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return fmt.Errorf("cache: write %s: %w", path, err)
	}
	return nil
}
