package workflows

import (
	"math"
	"math/bits"
)

// RNG is xoshiro256** with its whole state in four words, so the workflow can
// carry it through continue-as-new and every random choice of a run follows
// from the config's seed alone (workflows may not use math/rand's global
// state or the wall clock).
type RNG struct {
	S [4]uint64 `json:"s"`
}

// NewRNG seeds the generator by expanding seed with splitmix64, which never
// yields the all-zero state xoshiro cannot leave.
func NewRNG(seed uint64) *RNG {
	r := &RNG{}
	x := seed
	for i := range r.S {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		r.S[i] = z ^ (z >> 31)
	}
	return r
}

// Uint64 returns the next 64 random bits.
func (r *RNG) Uint64() uint64 {
	s := &r.S
	result := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return result
}

// Float64 is uniform in [0, 1).
func (r *RNG) Float64() float64 { return float64(r.Uint64()>>11) / (1 << 53) }

// Intn is uniform in [0, n) without modulo bias (Lemire's method). n must be > 0.
func (r *RNG) Intn(n int) int {
	if n <= 0 {
		panic("workflows: RNG.Intn with n <= 0")
	}
	bound := uint64(n)
	hi, lo := bits.Mul64(r.Uint64(), bound)
	if lo < bound {
		threshold := -bound % bound
		for lo < threshold {
			hi, lo = bits.Mul64(r.Uint64(), bound)
		}
	}
	return int(hi)
}

// Uniform is uniform in [lo, hi] (lo when the range is empty).
func (r *RNG) Uniform(lo, hi float64) float64 {
	if hi <= lo {
		return lo
	}
	return lo + (hi-lo)*r.Float64()
}

// LogUniform samples so that every order of magnitude in [lo, hi] is equally
// likely: the natural prior for learning rates. lo must be > 0.
func (r *RNG) LogUniform(lo, hi float64) float64 {
	if hi <= lo {
		return lo
	}
	return math.Exp(r.Uniform(math.Log(lo), math.Log(hi)))
}

// IntRange is uniform over the integers in [lo, hi].
func (r *RNG) IntRange(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + r.Intn(hi-lo+1)
}

// Weighted picks index i with probability w[i]/sum(w). Non-positive or
// non-finite weights are never picked; if none is positive it is uniform.
func (r *RNG) Weighted(w []float64) int {
	total := 0.0
	for _, v := range w {
		if v > 0 && !math.IsInf(v, 0) {
			total += v
		}
	}
	if !(total > 0) {
		return r.Intn(len(w))
	}
	x := r.Float64() * total
	last := 0
	for i, v := range w {
		if !(v > 0) || math.IsInf(v, 0) {
			continue
		}
		last = i
		if x < v {
			return i
		}
		x -= v
	}
	return last // rounding left x just above the last weight
}
