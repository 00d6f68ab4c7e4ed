package merge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The C kernels the pipeline runs must give the bits of the Go reference kernels.
func TestCKernelsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 5000 + 13
	vec := func(scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * scale)
			if i%97 == 0 {
				v[i] = 0
			}
		}
		return v
	}
	base, a, b, c := vec(1), vec(1), vec(1), vec(1)
	copy(a[:50], base[:50]) // zero deltas
	eq := func(what string, x, y []float32) {
		t.Helper()
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s[%d]: C %v Go %v", what, i, x[i], y[i])
			}
		}
	}
	for _, in := range [][][]float32{{a}, {a, b}, {a, b, c}} {
		w := []float32{0.3, -0.7, 1.1}[:len(in)]
		x, y := make([]float32, n), make([]float32, n)
		weightedSum(in, w, x)
		goWeightedSum(in, w, y)
		eq("weightedSum", x, y)
	}
	cd, gd := make([]float64, 3*((n+dotBlock-1)/dotBlock)), make([]float64, 3*((n+dotBlock-1)/dotBlock))
	dotBlocks(a, b, cd)
	goDotBlocks(a, b, gd)
	for i := range cd {
		if cd[i] != gd[i] {
			t.Fatalf("dotBlocks[%d]: C %v Go %v", i, cd[i], gd[i])
		}
	}
	var h1, h2 [histBins]uint32
	histHigh(base, a, &h1)
	goHistHigh(base, a, &h2)
	if h1 != h2 {
		t.Fatal("histHigh differs")
	}
	histLow(base, a, 0x3f80, &h1)
	goHistLow(base, a, 0x3f80, &h2)
	if h1 != h2 {
		t.Fatal("histLow differs")
	}
	bad := vec(1)
	bad[4321] = float32(math.NaN())
	if nonFinite(bad) != 4321 || goNonFinite(bad) != 4321 || nonFinite(a) != -1 {
		t.Fatal("nonFinite")
	}
	for _, consensus := range []bool{false, true} {
		for _, mode := range []string{"plain", "window", "random"} {
			cfg := &gtaConfig{weight: []float32{0.6, 0.5}, scale: []float32{1, 1}, density: []float32{0.4, 0.7},
				keys: []uint64{maskKey(3, "x", 1), maskKey(3, "x", 2)}, lo: []uint32{0x3e000000, 0x3d000000}, hi: []uint32{0x3fc00000, 0x7fffffff},
				consensus: consensus, normalize: true, divisor: 1.1, lambda: 1.3}
			cfg.random, cfg.window = mode == "random", mode == "window"
			if cfg.random {
				cfg.scale = []float32{2.5, 1 / 0.7}
			}
			x, y := make([]float32, n), make([]float32, n)
			d := make([]float32, 2*n)
			gtaChunk(base, [][]float32{a, b}, cfg, 777, x, d)
			goGTAChunk(base, [][]float32{a, b}, cfg, 777, y, d)
			eq("gta "+mode, x, y)
		}
	}
}

func benchGTA(b *testing.B, consensus, random bool, useC bool) {
	const n = defaultChunk
	r := rand.New(rand.NewPCG(1, 2))
	mk := func() []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.02)
		}
		return v
	}
	base, a, c := mk(), mk(), mk()
	cfg := &gtaConfig{weight: []float32{0.5, 0.5}, scale: []float32{2, 2}, density: []float32{0.5, 0.5},
		keys: []uint64{1, 2}, consensus: consensus, normalize: true, divisor: 1, lambda: 1, random: random}
	out, d := make([]float32, n), make([]float32, 2*n)
	b.SetBytes(n)
	for b.Loop() {
		if useC {
			gtaChunk(base, [][]float32{a, c}, cfg, 0, out, d)
		} else {
			goGTAChunk(base, [][]float32{a, c}, cfg, 0, out, d)
		}
	}
}

// Throughput per output element (MB/s = million elements/s).
func BenchmarkGTAConsensusC(b *testing.B)    { benchGTA(b, true, false, true) }
func BenchmarkGTAConsensusGo(b *testing.B)   { benchGTA(b, true, false, false) }
func BenchmarkDareConsensusC(b *testing.B)   { benchGTA(b, true, true, true) }
func BenchmarkDareConsensusGo(b *testing.B)  { benchGTA(b, true, true, false) }
func BenchmarkTaskArithmeticC(b *testing.B)  { benchGTA(b, false, false, true) }
func BenchmarkTaskArithmeticGo(b *testing.B) { benchGTA(b, false, false, false) }

func TestCacheRing(t *testing.T) {
	c := newTensorCache(100)
	type job = span
	var live []job
	alloc := func(n int64) (int64, bool) {
		at, ok := c.fit(n)
		if ok {
			c.live = append(c.live, span{at, at + n})
			live = append(live, span{at, at + n})
		}
		return at, ok
	}
	free := func() { c.live = c.live[1:]; live = live[1:] }
	if at, ok := alloc(60); !ok || at != 0 {
		t.Fatal(at, ok)
	}
	if _, ok := alloc(50); ok {
		t.Fatal("60+50 fit in 100")
	}
	if at, ok := alloc(40); !ok || at != 60 {
		t.Fatal(at, ok)
	}
	free() // [60,100) live
	if at, ok := alloc(50); !ok || at != 0 {
		t.Fatal("wrap failed", at, ok)
	}
	if _, ok := alloc(20); ok { // [50,60) is free but only 10 bytes
		t.Fatal("overlap")
	}
	if at, ok := alloc(10); !ok || at != 50 {
		t.Fatal(at, ok)
	}
	free()
	free()
	free()
	if at, ok := alloc(100); !ok || at != 0 {
		t.Fatal("empty ring refused", at, ok)
	}
}
