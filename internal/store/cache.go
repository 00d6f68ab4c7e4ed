package store

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// cache is a worker-local directory of content objects fetched from a remote
// backend, bounded in bytes with least-recently-used eviction. Entries in use
// (pinned by an open Local) are never evicted.
type cache struct {
	dir   string
	limit int64

	mu      sync.Mutex
	entries map[string]*cacheEntry // by backend key
	total   int64
	clock   int64 // logical time for LRU order; ties broken by key
}

type cacheEntry struct {
	size     int64
	lastUse  int64
	pins     int
	verified bool // hashed since this process started
}

func openCache(dir string, limit int64) (*cache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: cache dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("store: create cache dir: %w", err)
	}
	c := &cache{dir: abs, limit: limit, entries: map[string]*cacheEntry{}}
	type found struct {
		key  string
		size int64
		mod  time.Time
	}
	var all []found
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(abs, p)
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), tmpMarker) {
			// Left by a killed process: never complete, never referenced.
			return os.Remove(p)
		}
		if _, _, ok := kindOfKey(key); !ok {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		all = append(all, found{key, fi.Size(), fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scan cache %s: %w", abs, err)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].mod.Equal(all[j].mod) {
			return all[i].mod.Before(all[j].mod)
		}
		return all[i].key < all[j].key
	})
	for _, f := range all {
		c.clock++
		c.entries[f.key] = &cacheEntry{size: f.size, lastUse: c.clock}
		c.total += f.size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

func (c *cache) path(key string) string { return filepath.Join(c.dir, filepath.FromSlash(key)) }

// pin marks key in use and reports whether it is present and whether it was
// already verified in this process.
func (c *cache) pin(key string) (present, verified bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return false, false
	}
	c.clock++
	e.lastUse = c.clock
	e.pins++
	return true, e.verified
}

func (c *cache) unpin(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.pins > 0 {
		e.pins--
	}
	c.evictLocked()
}

func (c *cache) markVerified(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		e.verified = true
	}
}

// drop forgets and deletes an entry (a corrupt one).
func (c *cache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.total -= e.size
		delete(c.entries, key)
	}
	os.Remove(c.path(key))
}

// added records a file that was just renamed into place, pinned once.
func (c *cache) added(key string, size int64, verified bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pins := 1
	if e, ok := c.entries[key]; ok {
		// Replaced in place: readers holding the old entry keep their pins.
		c.total -= e.size
		pins += e.pins
	}
	c.clock++
	c.entries[key] = &cacheEntry{size: size, lastUse: c.clock, pins: pins, verified: verified}
	c.total += size
	c.evictLocked()
}

// evictLocked removes unpinned entries, oldest first, until under the limit.
func (c *cache) evictLocked() {
	if c.limit <= 0 || c.total <= c.limit {
		return
	}
	keys := make([]string, 0, len(c.entries))
	for k, e := range c.entries {
		if e.pins == 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return c.entries[keys[i]].lastUse < c.entries[keys[j]].lastUse })
	for _, k := range keys {
		if c.total <= c.limit {
			return
		}
		c.total -= c.entries[k].size
		delete(c.entries, k)
		os.Remove(c.path(k))
	}
}

// evictUnpinned removes every entry nobody holds (the disk is full) and returns the bytes freed.
func (c *cache) evictUnpinned() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var freed int64
	for k, e := range c.entries {
		if e.pins == 0 {
			freed += e.size
			c.total -= e.size
			delete(c.entries, k)
			os.Remove(c.path(k))
		}
	}
	return freed
}

// Size is the cache's total bytes.
func (c *cache) size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}
