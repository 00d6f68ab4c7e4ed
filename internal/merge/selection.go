package merge

import (
	"math"
)

// Magnitude sparsification needs, per model and tensor, the k-th largest |delta|.
// A streaming radix select finds it exactly in two read passes with fixed memory:
// pass one histograms the high 16 bits of |delta| (as float32 bits, which order like
// the values), pass two the low 16 bits inside the bin that holds rank k.

const histBins = 1 << 16

// rankQuery asks for the k-th largest |delta| (k >= 1) of one model.
type rankQuery struct {
	model int    // index among the non-base models
	k     uint64 // 1-based rank from the top
	bin   uint32 // high half found by pass one
	rest  uint64 // rank left inside the bin
	bits  uint32 // answer: float32 bits of |delta|
}

// goHistHigh adds the high halves of |x − base| bits to h.
func goHistHigh(base, x []float32, h *[histBins]uint32) {
	x = x[:len(base)]
	for i := range base {
		h[(math.Float32bits(x[i]-base[i])&0x7fffffff)>>16]++
	}
}

// goHistLow adds the low halves of the elements whose high half is bin.
func goHistLow(base, x []float32, bin uint32, h *[histBins]uint32) {
	x = x[:len(base)]
	for i := range base {
		b := math.Float32bits(x[i]-base[i]) & 0x7fffffff
		if b>>16 == bin {
			h[b&0xffff]++
		}
	}
}

// pickRank walks a histogram from the top and returns the bin holding rank k and
// the rank left inside it.
func pickRank[T uint32 | uint64](h []T, k uint64) (bin uint32, rest uint64) {
	var above uint64
	for b := len(h) - 1; b >= 0; b-- {
		if above+uint64(h[b]) >= k {
			return uint32(b), k - above
		}
		above += uint64(h[b])
	}
	return 0, 1 // unreachable for 1 <= k <= total
}

// windowFor turns density (and, for breadcrumbs, gamma) into rank queries for the
// magnitude window of one model with n elements. It returns the queries for lo and
// hi (nil when that side is open) and the fixed bounds to use otherwise.
func windowFor(kind sparsifyKind, density, gamma float64, n int64) (loK, hiK uint64, loFixed, hiFixed uint32, keepAll bool) {
	if density >= 1 {
		return 0, 0, 0, math.MaxUint32, true
	}
	target := uint64(math.Floor(density * float64(n)))
	var top uint64
	if kind == sparsifyOutliers {
		top = uint64(math.Floor(gamma * float64(n)))
		if target+top > uint64(n) {
			top = uint64(n) - target
		}
	}
	hiFixed = math.MaxUint32
	if top > 0 {
		hiK = top + 1 // keep |delta| <= the (top+1)-th largest
		if hiK > uint64(n) {
			hiK = 0
			hiFixed = 0
		}
	}
	if target == 0 {
		return 0, hiK, math.MaxUint32, hiFixed, false // keep nothing
	}
	return top + target, hiK, 0, hiFixed, false
}
