// Package rng is the one pseudo-random source of the evaluation code: a
// splitmix64 stream whose output is fixed by this file alone, so subsamples,
// few-shot draws and synthetic items stay byte-identical across Go releases
// (math/rand makes no such promise for its helper methods).
package rng

import (
	"crypto/sha256"
	"encoding/binary"
)

// Rand is a splitmix64 generator. The zero value is a valid stream (seed 0).
type Rand struct{ state uint64 }

// New returns a stream started at seed.
func New(seed uint64) *Rand { return &Rand{state: seed} }

// Derive returns a stream whose seed mixes seed with labels, so that
// independent uses of one run seed (per task, per split, per item) do not
// share a sequence.
func Derive(seed uint64, labels ...string) *Rand {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	for _, l := range labels {
		binary.LittleEndian.PutUint64(b[:], uint64(len(l)))
		h.Write(b[:]) // length prefix: ("ab","c") differs from ("a","bc")
		h.Write([]byte(l))
	}
	return New(binary.LittleEndian.Uint64(h.Sum(nil)))
}

// Uint64 returns the next 64 pseudo-random bits.
func (r *Rand) Uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// IntN returns a uniform integer in [0, n). It panics if n <= 0, which is a
// programming error, never a data error.
func (r *Rand) IntN(n int) int {
	if n <= 0 {
		panic("rng: IntN called with n <= 0")
	}
	bound := uint64(n)
	// Rejection sampling removes the modulo bias.
	limit := ^uint64(0) - (^uint64(0) % bound)
	for {
		v := r.Uint64()
		if v < limit {
			return int(v % bound)
		}
	}
}

// Range returns a uniform integer in [lo, hi].
func (r *Rand) Range(lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// Perm returns a random permutation of [0, n).
func (r *Rand) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// Shuffle is a Fisher-Yates shuffle over n elements.
func (r *Rand) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.IntN(i+1))
	}
}

// Sample returns k distinct indices of [0, n) in the order drawn (k <= n).
func (r *Rand) Sample(n, k int) []int {
	if k > n {
		k = n
	}
	// Partial Fisher-Yates over a sparse map keeps this O(k) for large n.
	swapped := make(map[int]int, k)
	get := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	out := make([]int, k)
	for i := 0; i < k; i++ {
		j := i + r.IntN(n-i)
		vi, vj := get(i), get(j)
		out[i] = vj
		swapped[j] = vi
		swapped[i] = vj
	}
	return out
}
