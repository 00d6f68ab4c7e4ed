package merge

/*
#include "kernels.h"
*/
import "C"

import (
	"unsafe"
)

// The pipeline calls these C kernels (auto-vectorised; 5-20x faster than the Go
// loops). kernels.go keeps the Go versions as the readable reference; a test
// checks that both give the same bits.

func fp(x []float32) *C.float {
	if len(x) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&x[0]))
}

// nonFinite returns the index of the first NaN or Inf in x, or -1.
func nonFinite(x []float32) int64 {
	return int64(C.mk_nonfinite(fp(x), C.int64_t(len(x))))
}

func weightedSum(in [][]float32, w []float32, out []float32) {
	n := C.int64_t(len(out))
	if len(out) == 0 {
		return
	}
	if len(in) == 2 {
		C.mk_weighted2(fp(in[0]), fp(in[1]), C.float(w[0]), C.float(w[1]), fp(out), n)
		return
	}
	C.mk_scale(fp(in[0]), C.float(w[0]), fp(out), n)
	for j := 1; j < len(in); j++ {
		C.mk_axpy(fp(in[j]), C.float(w[j]), fp(out), n)
	}
}

// dotBlocks: the C version of goDotBlocks.
func dotBlocks(a, b []float32, res []float64) {
	if len(a) == 0 {
		return
	}
	C.mk_dots(fp(a), fp(b), C.int64_t(len(a)), (*C.double)(&res[0]))
}

func histHigh(base, x []float32, h *[histBins]uint32) {
	if len(base) == 0 {
		return
	}
	C.mk_hist_high(fp(base), fp(x), (*C.uint32_t)(unsafe.Pointer(&h[0])), C.int64_t(len(base)))
}

func histLow(base, x []float32, bin uint32, h *[histBins]uint32) {
	if len(base) == 0 {
		return
	}
	C.mk_hist_low(fp(base), fp(x), C.uint32_t(bin), (*C.uint32_t)(unsafe.Pointer(&h[0])), C.int64_t(len(base)))
}

func (c *gtaConfig) mode() (C.int, bool) {
	switch {
	case c.random:
		return 2, true
	case c.window:
		return 1, true
	}
	return 0, false
}

func gtaChunk(base []float32, models [][]float32, c *gtaConfig, start int64, out []float32, delta []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	mode, _ := c.mode()
	call := func(j int, acc C.int, dst []float32) {
		var lo, hi C.uint32_t
		var key C.uint64_t
		var thr C.uint32_t
		if c.window {
			lo, hi = C.uint32_t(c.lo[j]), C.uint32_t(c.hi[j])
		}
		if c.random {
			key, thr = C.uint64_t(c.keys[j]), C.uint32_t(densityThreshold(c.density[j]))
		}
		C.mk_delta(fp(models[j]), fp(base), C.float(c.weight[j]*c.scale[j]), mode, lo, hi, key, thr,
			C.int64_t(start), acc, fp(dst), C.int64_t(n))
	}
	if !c.consensus {
		for j := range models {
			acc := C.int(1)
			if j == 0 {
				acc = 0
			}
			call(j, acc, out)
		}
		f := c.lambda
		if c.normalize {
			f /= c.divisor
		}
		C.mk_finish(fp(base), C.float(f), fp(out), C.int64_t(n))
		return
	}
	d := delta[:len(models)*n]
	for j := range models {
		call(j, 0, d[j*n:(j+1)*n])
	}
	norm := C.int(0)
	if c.normalize {
		norm = 1
	}
	C.mk_consensus(fp(base), fp(d), fp(c.weight), C.int(len(models)), C.float(c.lambda), norm, fp(out), C.int64_t(n))
}
