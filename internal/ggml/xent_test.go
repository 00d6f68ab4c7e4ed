package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
)

// xentCase computes CrossEntropyRows and its logits gradient (through ggml's backward pass and
// FuseCrossEntropy) on threads threads for random logits [V, R], and returns them with the inputs.
func xentCase(t *testing.T, V, R, threads int, scale float64) (loss float32, grad, x []float32, tg []int32, w []float32) {
	t.Helper()
	b, err := NewBackend(BackendOptions{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := NewContext(8, 0, false)
	defer c.Free()
	logits, targets, weights := c.New(F32, int64(V), int64(R)), c.New(I32, int64(R)), c.New(F32, int64(R))
	logits.SetParam()
	buf, err := b.Alloc(c)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	rng := rand.New(rand.NewPCG(uint64(V), uint64(R)))
	x = make([]float32, V*R)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	tg, w = make([]int32, R), make([]float32, R)
	for r := range tg {
		tg[r] = int32(rng.IntN(V))
		if r%3 != 1 { // every third row is not learned
			w[r] = 1 / float32(R)
		}
	}
	logits.SetF32(x)
	targets.SetI32(tg)
	weights.SetF32(w)
	gc := NewContext(64, 256, true)
	defer gc.Free()
	l, err := gc.CrossEntropyRows(logits, targets, weights)
	if err != nil {
		t.Fatal(err)
	}
	l.SetLoss()
	l.SetOutput()
	g := gc.NewGraph(256, true)
	g.Expand(l)
	g.BuildBackward(gc)
	gl := g.Grad(logits)
	gl.SetOutput()
	if n := g.FuseCrossEntropy(gc); n != 2 {
		t.Fatalf("FuseCrossEntropy changed %d nodes, want 2", n)
	}
	run := gc.GraphOf(256, l, gl)
	if err := b.AllocGraph(run); err != nil {
		t.Fatal(err)
	}
	g.LossSeed(l).SetF32([]float32{1})
	if err := b.Compute(run); err != nil {
		t.Fatal(err)
	}
	return l.F32()[0], gl.F32(), x, tg, w
}

// The fused loss and its gradient match the float64 definitions (rows of weight 0 included), at a vocabulary
// size that is not a multiple of the vector width and with logits spread wide enough to underflow exp.
func TestCrossEntropyRowsMatchesExact(t *testing.T) {
	for _, sc := range []float64{1, 30} {
		const V, R = 1003, 7
		loss, grad, x, tg, w := xentCase(t, V, R, 1, sc)
		var want float64
		worst := 0.0
		for r := 0; r < R; r++ {
			row := x[r*V : (r+1)*V]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - mx)
			}
			lse := mx + math.Log(s)
			want += float64(w[r]) * (lse - float64(row[tg[r]]))
			for i, v := range row {
				g := float64(w[r]) * math.Exp(float64(v)-lse)
				if int32(i) == tg[r] {
					g -= float64(w[r])
				}
				if w[r] == 0 {
					worst = math.Max(worst, math.Abs(float64(grad[r*V+i]))/1e-12)
				} else { // relative to the row's weight: lse carries float rounding of its magnitude
					worst = math.Max(worst, math.Abs(g-float64(grad[r*V+i]))/float64(w[r]))
				}
			}
		}
		if math.Abs(float64(loss)-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Errorf("scale %v: loss %v, want %v", sc, loss, want)
		}
		if worst > 1e-5 {
			t.Errorf("scale %v: worst gradient error %.3g", sc, worst)
		}
	}
}

// Loss and gradient bytes do not depend on the thread count.
func TestCrossEntropyRowsThreadIndependent(t *testing.T) {
	l1, g1, _, _, _ := xentCase(t, 517, 9, 1, 3)
	l2, g2, _, _, _ := xentCase(t, 517, 9, 2, 3)
	if math.Float32bits(l1) != math.Float32bits(l2) {
		t.Fatalf("loss %v on 1 thread, %v on 2", l1, l2)
	}
	for i := range g1 {
		if math.Float32bits(g1[i]) != math.Float32bits(g2[i]) {
			t.Fatalf("gradient %d: %v on 1 thread, %v on 2", i, g1[i], g2[i])
		}
	}
}
