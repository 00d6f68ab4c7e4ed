package merge

import (
	"context"
	"sync"
)

// tensorCache keeps the parents' raw bytes of the tensors being prepared, so slerp
// and the magnitude methods read each tensor from disk once. It is a ring over one
// slab: tensors are taken in output order and given back in the same order when
// written, so the next tensor's pre-passes can run while the last is still being
// written, as long as both fit.
type tensorCache struct {
	mu      sync.Mutex
	size    int64
	buf     []byte
	live    []span // FIFO of the ranges in use
	changed chan struct{}
}

type span struct{ start, end int64 }

func newTensorCache(size int64) *tensorCache {
	return &tensorCache{size: size, changed: make(chan struct{})}
}

// fit returns where n bytes can go, or false.
func (c *tensorCache) fit(n int64) (int64, bool) {
	if len(c.live) == 0 {
		return 0, n <= c.size
	}
	first, last := c.live[0], c.live[len(c.live)-1]
	if last.start >= first.start { // not wrapped: room after last, or before first
		if last.end+n <= c.size {
			return last.end, true
		}
		return 0, n <= first.start
	}
	return last.end, last.end+n <= first.start
}

// take attaches a cache range to j when j's sources fit in the slab at all,
// waiting for earlier tensors to be written if the ring is full.
func (c *tensorCache) take(ctx context.Context, j *tensorJob) error {
	if c == nil {
		return nil
	}
	var total int64
	offs := make([]int64, len(j.o.srcs))
	for k, src := range j.o.srcs {
		offs[k] = total
		total += src.typ.bytesFor(j.o.elems)
	}
	if total > c.size || total == 0 {
		return nil
	}
	for {
		c.mu.Lock()
		if at, ok := c.fit(total); ok {
			if c.buf == nil {
				c.buf = make([]byte, c.size) // pages become resident only when used
			}
			c.live = append(c.live, span{at, at + total})
			j.cache, j.cacheOff = c.buf[at:at+total:at+total], offs
			c.mu.Unlock()
			return nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// give returns j's range once j is written (always the oldest live range).
func (c *tensorCache) give(j *tensorJob) {
	if c == nil || j.cache == nil {
		return
	}
	c.mu.Lock()
	c.live = c.live[1:]
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	j.cache = nil
}
