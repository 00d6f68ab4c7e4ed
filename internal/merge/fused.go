package merge

/*
#include "kernels.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// The fused path: chunks of float sources go from their raw bytes to the child's
// bytes in one C pass per chunk (decode, combine, encode, block by block in L1),
// instead of decoding every source into a chunk-sized float32 buffer, combining
// into another and encoding that. Quantized sources are widened to float32 first
// and enter the same kernels as F32. The bytes are those of the unfused path
// (TestFusedMatchesUnfused); a chunk holding a NaN or Inf is rerun on the unfused
// path, which reports it.

func typeCode(t elemType) (C.int, bool) {
	switch t.st {
	case typeF32.st:
		return C.MK_F32, true
	case typeF16.st:
		return C.MK_F16, true
	case typeBF16.st:
		return C.MK_BF16, true
	}
	return 0, false
}

// fusable: the output is a float type and the sources fit the kernels.
func fusable(j *tensorJob) bool {
	_, ok := typeCode(j.o.typ)
	return ok && len(j.o.srcs) <= C.MK_MAXSRC
}

// rawChunk holds one chunk of every source as the kernels read it.
type rawChunk struct {
	ptrs  []unsafe.Pointer
	types []C.int
	pin   runtime.Pinner
}

// loadRaw reads chunk [start, start+n) of every source: float types as stored,
// quantized types widened (and checked) into s.in.
func (s *scratch) loadRaw(j *tensorJob, start, n int64, rc *rawChunk) error {
	srcs := j.o.srcs
	for len(s.raws) < len(srcs) {
		s.raws = append(s.raws, nil)
	}
	for len(s.in) < len(srcs) {
		s.in = append(s.in, nil)
	}
	rc.ptrs, rc.types = rc.ptrs[:0], rc.types[:0]
	for k, src := range srcs {
		nb := src.typ.bytesFor(n)
		var raw []byte
		if j.cache != nil {
			lo := j.cacheOff[k] + src.typ.bytesFor(start)
			raw = j.cache[lo : lo+nb]
		} else {
			if int64(cap(s.raws[k])) < nb {
				s.raws[k] = make([]byte, nb)
			}
			raw = s.raws[k][:nb]
		}
		if j.cache == nil || !j.cacheFull {
			if _, err := src.r.ReadAt(raw, src.offset+src.typ.bytesFor(start)); err != nil {
				return fmt.Errorf("%s: tensor %q: reading elements %d..%d: %v", src.path, src.name, start, start+n, err)
			}
		}
		code, ok := typeCode(src.typ)
		if !ok { // quantized: widen with ggml, check, hand over as F32
			s.in[k] = grow(s.in[k], n)
			if err := src.typ.decode(raw, s.in[k]); err != nil {
				return fmt.Errorf("%s: tensor %q: %v", src.path, src.name, err)
			}
			if i := nonFinite(s.in[k]); i >= 0 {
				return fmt.Errorf("%s: tensor %q: non-finite value %v at element %d", src.path, src.name, s.in[k][i], start+i)
			}
			code, raw = C.MK_F32, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s.in[k]))), 4*n)
		}
		var p unsafe.Pointer
		if n > 0 {
			p = unsafe.Pointer(&raw[0])
			rc.pin.Pin(p)
		}
		rc.ptrs = append(rc.ptrs, p)
		rc.types = append(rc.types, code)
	}
	return nil
}

func (rc *rawChunk) done() { rc.pin.Unpin() }

// computeFused writes chunk c of a weighted or task-vector job straight into output
// bytes. ok is false when the chunk must go the unfused way (a non-finite input).
func computeFused(j *tensorJob, c int, s *scratch) (b []byte, ok bool, err error) {
	start, n := j.span(c)
	rc := &s.rc
	defer rc.done()
	if err := s.loadRaw(j, start, n, rc); err != nil {
		return nil, false, err
	}
	otype, _ := typeCode(j.o.typ)
	b = getBuf(j.o.typ.bytesFor(n))
	if n == 0 {
		return b, true, nil
	}
	out := unsafe.Pointer(&b[0])
	var bad C.int
	switch j.kind {
	case kindWeighted:
		bad = C.mk_fused_weighted(&rc.ptrs[0], &rc.types[0], (*C.float)(&j.weights[0]), C.int(len(rc.ptrs)), out, otype, C.int64_t(n))
	case kindGTA:
		g := j.fusedGTA()
		base := j.o.base
		m := len(j.others)
		models, types := make([]unsafe.Pointer, m), make([]C.int, m)
		for k, idx := range j.others {
			models[k], types[k] = rc.ptrs[idx], rc.types[idx]
		}
		bad = C.mk_fused_gta(rc.ptrs[base], rc.types[base], &models[0], &types[0], C.int(m),
			&g.w[0], g.mode, &g.lo[0], &g.hi[0], &g.key[0], &g.thr[0], C.int64_t(start),
			g.consensus, &g.weight[0], C.float(j.gta.lambda), g.normalize, C.float(g.finish), out, otype, C.int64_t(n))
	default:
		putBuf(b)
		return nil, false, nil
	}
	if bad != 0 {
		putBuf(b)
		return nil, false, nil
	}
	return b, true, nil
}

// gtaArgs is a task-vector job's per-model setup as the C kernel takes it.
type gtaArgs struct {
	w, weight                  []C.float
	lo, hi, thr                []C.uint32_t
	key                        []C.uint64_t
	mode, consensus, normalize C.int
	finish                     float32
}

// fusedGTA builds the kernel arguments (after the pre-passes set the windows).
func (j *tensorJob) fusedGTA() *gtaArgs {
	c := j.gta
	m := len(j.others)
	g := &gtaArgs{w: make([]C.float, m), weight: make([]C.float, m), lo: make([]C.uint32_t, m), hi: make([]C.uint32_t, m),
		thr: make([]C.uint32_t, m), key: make([]C.uint64_t, m)}
	g.mode, _ = c.mode()
	for k := 0; k < m; k++ {
		g.w[k] = C.float(c.weight[k] * c.scale[k])
		g.weight[k] = C.float(c.weight[k])
		if c.window {
			g.lo[k], g.hi[k] = C.uint32_t(c.lo[k]), C.uint32_t(c.hi[k])
		}
		if c.random {
			g.key[k], g.thr[k] = C.uint64_t(c.keys[k]), C.uint32_t(densityThreshold(c.density[k]))
		}
	}
	if c.consensus {
		g.consensus = 1
	}
	if c.normalize {
		g.normalize = 1
	}
	g.finish = c.lambda
	if c.normalize {
		g.finish /= c.divisor
	}
	return g
}

// fusedDots is slerp's pre-pass on raw chunks: one (a·b, a·a, b·b) per dotBlock
// into res; ok is false on a non-finite input.
func fusedDots(j *tensorJob, c int, s *scratch, res []float64) (ok bool, err error) {
	start, n := j.span(c)
	rc := &s.rc
	defer rc.done()
	if err := s.loadRaw(j, start, n, rc); err != nil {
		return false, err
	}
	if n == 0 {
		return true, nil
	}
	return C.mk_fused_dots(rc.ptrs[0], rc.types[0], rc.ptrs[1], rc.types[1], C.int64_t(n), (*C.double)(&res[0])) == 0, nil
}

// toFloatC and fromFloatC expose the kernels' conversions to the tests.
func toFloatC(t elemType, raw []byte, dst []float32) {
	code, _ := typeCode(t)
	if len(dst) > 0 {
		C.mk_to_float(unsafe.Pointer(&raw[0]), code, (*C.float)(&dst[0]), C.int64_t(len(dst)))
	}
}

func fromFloatC(t elemType, src []float32, raw []byte) {
	code, _ := typeCode(t)
	if len(src) > 0 {
		C.mk_from_float((*C.float)(&src[0]), unsafe.Pointer(&raw[0]), code, C.int64_t(len(src)))
	}
}

// fusedHist runs one histogram pass of the magnitude select on a raw chunk: for
// each (model, bin, histogram) triple, the high halves (low false) or the low halves
// inside bin. ok is false on a non-finite input (the unfused pass then reports it).
func fusedHist(j *tensorJob, c int, s *scratch, low bool, models []int, bins []uint32, hs []*[histBins]uint32) (ok bool, err error) {
	start, n := j.span(c)
	return fusedHistAt(j, start, n, s, low, models, bins, hs)
}

// fusedHistAt is fusedHist on elements [start, start+n) of the tensor.
func fusedHistAt(j *tensorJob, start, n int64, s *scratch, low bool, models []int, bins []uint32, hs []*[histBins]uint32) (ok bool, err error) {
	rc := &s.rc
	defer rc.done()
	if err := s.loadRaw(j, start, n, rc); err != nil {
		return false, err
	}
	if n == 0 {
		return true, nil
	}
	base := j.o.base
	lw := C.int(0)
	if low {
		lw = 1
	}
	for i, k := range models {
		idx := j.others[k]
		if C.mk_fused_hist(rc.ptrs[base], rc.types[base], rc.ptrs[idx], rc.types[idx], C.int64_t(n), lw,
			C.uint32_t(bins[i]), (*C.uint32_t)(unsafe.Pointer(&hs[i][0]))) != 0 {
			return false, nil
		}
	}
	return true, nil
}
