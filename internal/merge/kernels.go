package merge

import (
	"math"
)

// Kernels work on one chunk of one tensor: in[j] holds source j's elements of the
// chunk (all the same length), out receives the merged elements. They keep no
// state between chunks except what the per-tensor pre-passes computed, so chunks
// can run in any order on any worker and give the same bytes.

// goWeightedSum: out = Σ w[j]·in[j].
func goWeightedSum(in [][]float32, w []float32, out []float32) {
	switch len(in) {
	case 1:
		a, wa := in[0][:len(out)], w[0]
		for i := range out {
			out[i] = wa * a[i]
		}
	case 2:
		a, b, wa, wb := in[0][:len(out)], in[1][:len(out)], w[0], w[1]
		for i := range out {
			out[i] = wa*a[i] + wb*b[i]
		}
	default:
		a, wa := in[0][:len(out)], w[0]
		for i := range out {
			out[i] = wa * a[i]
		}
		for j := 1; j < len(in); j++ {
			x, wx := in[j][:len(out)], w[j]
			for i := range out {
				out[i] += wx * x[i]
			}
		}
	}
}

// dotBlock is the block of slerp's dot products: one (a·b, a·a, b·b) per block of
// this many elements, added in tensor order once every chunk is done, so the sums
// (and the merged bytes) are the same whatever the chunking and parallelism.
const dotBlock = 1024

// goDotBlocks writes, for each dotBlock-element block of a and b, a·b, a·a and b·b
// into res[3·block:]: 16 float32 lanes per product, summed into float64 lane by lane
// (fast, accurate, and the exact order the C kernel uses).
func goDotBlocks(a, b []float32, res []float64) {
	b = b[:len(a)]
	for s := 0; s < len(a); s += dotBlock {
		e := min(s+dotBlock, len(a))
		var pab, paa, pbb [16]float32
		i := s
		for ; i+16 <= e; i += 16 {
			for k := 0; k < 16; k++ {
				x, y := a[i+k], b[i+k]
				pab[k] += x * y
				paa[k] += x * x
				pbb[k] += y * y
			}
		}
		for k := 0; i < e; i, k = i+1, k+1 {
			x, y := a[i], b[i]
			pab[k] += x * y
			paa[k] += x * x
			pbb[k] += y * y
		}
		var ab, aa, bb float64
		for k := 0; k < 16; k++ {
			ab += float64(pab[k])
			aa += float64(paa[k])
			bb += float64(pbb[k])
		}
		r := res[3*(s/dotBlock):]
		r[0], r[1], r[2] = ab, aa, bb
	}
}

// sumDotBlocks adds the per-block dot products in tensor order.
func sumDotBlocks(res []float64) (ab, aa, bb float64) {
	for i := 0; i+2 < len(res); i += 3 {
		ab, aa, bb = ab+res[i], aa+res[i+1], bb+res[i+2]
	}
	return
}

// goNonFinite returns the index of the first NaN or Inf, or -1.
func goNonFinite(x []float32) int64 {
	for i, v := range x {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
			return int64(i)
		}
	}
	return -1
}

// slerpDotThreshold: above this |cos| the vectors are nearly colinear and slerp
// falls back to linear interpolation (mergekit's DOT_THRESHOLD).
const slerpDotThreshold = 0.9995

// slerpCoeffs returns s0, s1 with slerp(t, v0, v1) = s0·v0 + s1·v1, where v0, v1 are
// the unnormalised tensors and ab, aa, bb their dot products (mergekit semantics:
// normalise only to measure the angle; norms <= eps are left as they are).
func slerpCoeffs(t, ab, aa, bb float64) (s0, s1 float64) {
	const eps = 1e-8
	na, nb := math.Sqrt(aa), math.Sqrt(bb)
	if na <= eps {
		na = 1
	}
	if nb <= eps {
		nb = 1
	}
	dot := ab / (na * nb)
	if math.Abs(dot) > slerpDotThreshold || math.IsNaN(dot) {
		return 1 - t, t
	}
	theta0 := math.Acos(dot)
	sin0 := math.Sin(theta0)
	thetaT := theta0 * t
	return math.Sin(theta0-thetaT) / sin0, math.Sin(thetaT) / sin0
}

// gtaConfig is the per-tensor setup of the task-vector family (task_arithmetic,
// ties, dare_*, breadcrumbs*). Index j runs over the non-base sources.
type gtaConfig struct {
	weight    []float32
	lo, hi    []uint32  // magnitude window on |delta| bits (keep lo <= bits <= hi)
	density   []float32 // random drop: keep with probability density
	scale     []float32 // applied to kept deltas (1/density for DARE)
	keys      []uint64  // DARE mask keys
	random    bool
	window    bool
	consensus bool
	normalize bool
	divisor   float32 // normalisation without consensus: Σ weight (or 1)
	lambda    float32
}

// gtaChunk merges one chunk: base + λ·mix(w_j·sparsify(θ_j − base)).
// start is the element index of the chunk inside the tensor (for DARE masks).
func goGTAChunk(base []float32, models [][]float32, c *gtaConfig, start int64, out []float32, delta []float32) {
	n := len(out)
	base = base[:n]
	m := len(models)
	if !c.consensus {
		// Σ_j w_j·sparse(δ_j), model by model: the first stores, the rest add.
		for j := 0; j < m; j++ {
			x := models[j][:n]
			w := c.weight[j] * c.scale[j]
			for i := range out {
				var v float32
				d := x[i] - base[i]
				switch {
				case c.random:
					if maskBits(c.keys[j], start+int64(i)) < densityThreshold(c.density[j]) {
						v = w * d
					}
				case c.window:
					if b := math.Float32bits(d) & 0x7fffffff; b >= c.lo[j] && b <= c.hi[j] {
						v = w * d
					}
				default:
					v = w * d
				}
				if j == 0 {
					out[i] = v
				} else {
					out[i] += v
				}
			}
		}
		f := c.lambda
		if c.normalize {
			f /= c.divisor
		}
		for i := range out {
			out[i] = base[i] + f*out[i]
		}
		return
	}
	// Sign consensus: per element, the weighted deltas vote with their mass; only
	// those agreeing with the elected sign are averaged (disjoint mean).
	d := delta[:m*n] // d[j*n+i] = weighted sparse delta of model j
	for j := 0; j < m; j++ {
		x := models[j][:n]
		dj := d[j*n : (j+1)*n]
		w := c.weight[j] * c.scale[j]
		switch {
		case c.random:
			key, thr := c.keys[j], densityThreshold(c.density[j])
			for i := range dj {
				if maskBits(key, start+int64(i)) < thr {
					dj[i] = w * (x[i] - base[i])
				} else {
					dj[i] = 0
				}
			}
		case c.window:
			lo, hi := c.lo[j], c.hi[j]
			for i := range dj {
				v := x[i] - base[i]
				if b := math.Float32bits(v) & 0x7fffffff; b >= lo && b <= hi {
					dj[i] = w * v
				} else {
					dj[i] = 0
				}
			}
		default:
			for i := range dj {
				dj[i] = w * (x[i] - base[i])
			}
		}
	}
	for i := range out {
		var sum float32
		for j := 0; j < m; j++ {
			sum += d[j*n+i]
		}
		positive := sum >= 0
		var mix, div float32
		for j := 0; j < m; j++ {
			v := d[j*n+i]
			if (positive && v > 0) || (!positive && v < 0) {
				mix += v
				div += c.weight[j]
			}
		}
		if c.normalize {
			if div == 0 {
				div = 1
			}
			mix /= div
		}
		out[i] = base[i] + c.lambda*mix
	}
}

// splitmix64 is a strong 64-bit mixer; counter-based use makes DARE masks
// independent of chunking, worker count and processing order.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// maskKey derives the mask stream of one (seed, tensor, model) triple.
func maskKey(seed uint64, tensor string, model int) uint64 {
	h := uint64(14695981039346656037) // FNV-1a of the name
	for i := 0; i < len(tensor); i++ {
		h ^= uint64(tensor[i])
		h *= 1099511628211
	}
	return splitmix64(splitmix64(seed^h) + uint64(model)*0x632be59bd9b4e019)
}

// maskBits is the 32-bit uniform draw for element i.
func maskBits(key uint64, i int64) uint32 {
	return uint32(splitmix64(key^uint64(i)*0xd1342543de82ef95) >> 32)
}

// densityThreshold: keep an element when its draw is below this (P = density).
func densityThreshold(p float32) uint32 {
	if p >= 1 {
		return math.MaxUint32
	}
	return uint32(float64(p) * (1 << 32))
}

// modelStockChunk merges whole rows of length rowLen: per row, the mean cosine
// between the task vectors gives t = N·cos / (1 + (N−1)·cos), and the row becomes
// t·mean(θ_j) + (1−t)·base (Model Stock, cosine per row like mergekit).
func modelStockChunk(base []float32, models [][]float32, rowLen int, out []float32) {
	m := len(models)
	n := len(out)
	norms := make([]float64, m)
	for r := 0; r < n; r += rowLen {
		e := r + rowLen
		b := base[r:e]
		for j := 0; j < m; j++ {
			var s float64
			x := models[j][r:e]
			for i := range b {
				d := float64(x[i] - b[i])
				s += d * d
			}
			norms[j] = math.Sqrt(s)
		}
		var cos float64
		pairs := 0
		for j := 0; j < m; j++ {
			for k := j + 1; k < m; k++ {
				var s float64
				x, y := models[j][r:e], models[k][r:e]
				for i := range b {
					s += float64(x[i]-b[i]) * float64(y[i]-b[i])
				}
				c := s / math.Max(norms[j]*norms[k], 1e-6)
				cos += math.Max(-1, math.Min(1, c))
				pairs++
			}
		}
		cos /= float64(pairs)
		den := 1 + float64(m-1)*cos
		t := 0.0
		if math.Abs(den) > 1e-6 {
			t = float64(m) * cos / den
		}
		ft, fb := float32(t/float64(m)), float32(1-t)
		o := out[r:e]
		for i := range o {
			var s float32
			for j := 0; j < m; j++ {
				s += models[j][r+i]
			}
			o[i] = ft*s + fb*b[i]
		}
	}
}
