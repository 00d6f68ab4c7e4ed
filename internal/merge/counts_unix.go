//go:build unix

package merge

import (
	"syscall"
	"unsafe"
)

// newCounts returns n zeroed counters in their own anonymous mapping, released by
// free. The sampled select's histograms span several bins but F16 deltas fall on a
// few values, so only the pages where counts land become resident; memory from the
// Go heap would be cleared (every page touched) when reused, and each tensor's
// megabytes would wait for the collector, raising the peak RSS.
func newCounts(n int) (counts []uint32, free func()) {
	if n == 0 {
		return nil, func() {}
	}
	b, err := syscall.Mmap(-1, 0, 4*n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil { // no mapping: the heap still gives the same counts
		return make([]uint32, n), func() {}
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), n), func() { syscall.Munmap(b) }
}
