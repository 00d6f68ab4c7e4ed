// Package fuzzcheck holds what the fuzz targets of the parsers share: a measure of the heap bytes one parse
// allocates, so every target states its allocation bound (a multiple of the input size plus a constant) and
// fails when a crafted count or length makes the parser allocate beyond it. Tests import it; nothing else does.
package fuzzcheck

import (
	"runtime/metrics"
	"testing"
)

const allocsMetric = "/gc/heap/allocs:bytes"

// allocated returns the cumulative bytes allocated on the heap by the process (cheap: no stop-the-world).
func allocated() uint64 {
	s := []metrics.Sample{{Name: allocsMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Bound is a parser's allocation bound: at most PerByte bytes per input byte plus Fixed (buffers, maps,
// the background noise of the test process, and the runtime's accounting of small objects a span at a
// time, which can run ahead of the real bytes by up to a span per size class: keep Fixed at a few MiB).
type Bound struct {
	PerByte uint64
	Fixed   uint64
}

// Limit is the bound for an input of n bytes.
func (b Bound) Limit(n int) uint64 { return b.PerByte*uint64(n) + b.Fixed }

// Bytes runs fn and returns the heap bytes the process allocated meanwhile.
func Bytes(fn func()) uint64 {
	before := allocated()
	fn()
	return allocated() - before
}

// Check runs parse over an input of n bytes and fails t if it allocated more than the bound allows.
func Check(t testing.TB, what string, n int, b Bound, parse func()) {
	t.Helper()
	if got := Bytes(parse); got > b.Limit(n) {
		t.Fatalf("%s: parsing %d input bytes allocated %d bytes, over the stated bound %d per byte + %d = %d",
			what, n, got, b.PerByte, b.Fixed, b.Limit(n))
	}
}
