//go:build !unix

package merge

// newCounts returns n zeroed counters (see counts_unix.go).
func newCounts(n int) (counts []uint32, free func()) {
	return make([]uint32, n), func() {}
}
