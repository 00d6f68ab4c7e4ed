package merge

/*
#include "kernels.h"
*/
import "C"

import (
	"context"
	"math"
	"sync/atomic"
	"unsafe"
)

// The sampled magnitude select. The two histogram passes of the radix select each
// scatter every |delta| of every model into 65536 counters, which costs more than
// the merge itself. Instead, a fixed sample of the tensor (runs of sampleRun elements
// every sampleStride) brackets the k-th largest |delta| between two values, and one
// exact pass counts the values above the bracket and histograms those inside it
// (vector compares; only the few per cent inside are scattered into counters); the
// k-th largest is read off that histogram. The answer is the exact k-th largest, so the
// bytes are those of the histogram passes (TestBracketMatchesHistogram); when the
// bracket misses or spans too many bins (skewed data, tiny tensors), the
// histogram passes run instead. The sample's positions depend only on the tensor,
// not on chunking or parallelism.

// noBracket turns the sampled select off (tests compare both ways); bracketHits
// counts the tensors it answered.
var (
	noBracket   bool
	bracketHits atomic.Int64
)

// sampleStride: one sampled run per this many elements (a variable so that tests
// can sample densely enough for small tensors).
var sampleStride int64 = 1 << 16

const (
	sampleRun  = 1 << 12 // elements per run: 1/16 of the tensor at the default stride
	bracketMin = 1 << 18 // smaller tensors take the histogram passes
	bracketZ   = 5.0     // bracket half-width in standard deviations of the sample rank
	// most high-half bins a bracket may span (its histogram holds 65536 counters per bin)
	maxBracketBins = 6
	bracketSpan    = 1 << 16 // elements per read of the exact pass (128 KiB per F16 source)
)

// bracketSelect answers every query (setting q.bits) with one exact pass after the
// sample, or returns false when the histogram passes must run.
func bracketSelect(ctx context.Context, j *tensorJob, par int, ps *prepState, queries []*rankQuery) (bool, error) {
	n := j.o.elems
	if noBracket || noFuse || j.cache != nil || !fusable(j) || n < bracketMin || n >= math.MaxUint32 {
		return false, nil
	}
	m := len(j.others)
	// sample: high-half histograms of |delta| per model
	runs := int((n + sampleStride - 1) / sampleStride)
	par = max(1, min(par, runs))
	hists := make([][]*[histBins]uint32, par)
	for w := range hists {
		hists[w] = make([]*[histBins]uint32, m)
		for k := range hists[w] {
			h, free := newCounts(histBins) // sparse: only the sampled bins' pages are touched
			defer free()
			hists[w][k] = (*[histBins]uint32)(h)
		}
	}
	allModels, zeros := make([]int, m), make([]uint32, m)
	for k := range allModels {
		allModels[k] = k
	}
	var nonFinite atomic.Bool // the histogram passes then report it
	err := forRange(ctx, runs, par, ps, func(w int, s *scratch, r int) error {
		start := int64(r) * sampleStride
		ok, err := fusedHistAt(j, start, min(sampleRun, n-start), s, false, allModels, zeros, hists[w])
		if !ok {
			nonFinite.Store(true)
		}
		return err
	})
	if err != nil || nonFinite.Load() {
		return false, err
	}
	// brackets from the sample's ranks: whole high-half bins, at most maxBracketBins
	nq := len(queries)
	qmodel := make([]C.int, nq)
	lo, hi := make([]C.uint32_t, nq), make([]C.uint32_t, nq)
	tot := ps.total()
	for i, q := range queries {
		qmodel[i] = C.int(q.model)
		var total uint64
		for b := range tot {
			tot[b] = 0
			for w := range hists {
				tot[b] += uint64(hists[w][q.model][b])
			}
			total += tot[b]
		}
		frac := float64(q.k) / float64(n)
		r := frac * float64(total)
		width := bracketZ*math.Sqrt(r*(1-frac)+1) + 16
		rh, rl := math.Floor(r-width), math.Ceil(r+width)
		if rh < 1 || rl > float64(total) {
			return false, nil // the bracket would be open on one side: histograms
		}
		binHi, _ := pickRank(tot, uint64(rh))
		binLo, _ := pickRank(tot, uint64(rl))
		if binHi-binLo >= maxBracketBins {
			return false, nil
		}
		lo[i], hi[i] = C.uint32_t(binLo<<16), C.uint32_t(binHi<<16|0xffff)
	}
	// the exact pass: counts above each bracket, a histogram of the bits inside it; in
	// spans of bracketSpan elements, so a worker's raw span of every source stays in its
	// L2 cache from the read to the kernel
	spans := int((n + bracketSpan - 1) / bracketSpan)
	par = max(1, min(par, spans))
	above := make([][]uint64, par)
	for w := range above {
		above[w] = make([]uint64, nq)
	}
	// one histogram per worker and query (a shared one with atomic adds is several times
	// slower: F16 deltas fall on few values); pages are touched only where values fall
	inside := make([][][]uint32, par)
	for w := range inside {
		inside[w] = make([][]uint32, nq)
		for q := range queries {
			h, free := newCounts(int(hi[q] - lo[q] + 1))
			defer free()
			inside[w][q] = h
		}
	}
	err = forRange(ctx, spans, par, ps, func(w int, s *scratch, c int) error {
		start := int64(c) * bracketSpan
		cn := min(bracketSpan, n-start)
		rc := &s.rc
		defer rc.done()
		if err := s.loadRaw(j, start, cn, rc); err != nil {
			return err
		}
		if cn == 0 {
			return nil
		}
		xs, tx := make([]unsafe.Pointer, m), make([]C.int, m)
		for k, idx := range j.others {
			xs[k], tx[k] = rc.ptrs[idx], rc.types[idx]
		}
		hp := make([]*C.uint32_t, nq)
		for q := range queries {
			hp[q] = (*C.uint32_t)(unsafe.Pointer(&inside[w][q][0]))
			rc.pin.Pin(hp[q])
		}
		if C.mk_fused_bracket(rc.ptrs[j.o.base], rc.types[j.o.base], &xs[0], &tx[0], C.int(nq), &qmodel[0], &lo[0], &hi[0],
			(*C.uint64_t)(unsafe.Pointer(&above[w][0])), &hp[0], C.int64_t(cn)) != 0 {
			nonFinite.Store(true)
		}
		return nil
	})
	if err != nil || nonFinite.Load() {
		return false, err
	}
	// the k-th largest inside each bracket
	for i, q := range queries {
		var up, in uint64
		for w := range above {
			up += above[w][i]
		}
		h := inside[0][i] // the workers' counts added into the first's (each count < n < 2^32)
		for w := 1; w < par; w++ {
			for b, v := range inside[w][i] {
				h[b] += v
			}
		}
		for _, v := range h {
			in += uint64(v)
		}
		if q.k <= up || q.k > up+in {
			return false, nil // the k-th largest lies outside the bracket: histograms
		}
		b, _ := pickRank(h, q.k-up)
		q.bits = uint32(lo[i]) + b
	}
	bracketHits.Add(1)
	return true, nil
}
