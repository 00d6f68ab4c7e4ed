package ggml

import (
	"math"
	"testing"
)

// AdamWScaled makes the same update as ggml's AdamWStep on the scaled gradient (to float rounding).
func TestAdamWScaledMatchesGGML(t *testing.T) {
	b := testBackend(t)
	c := NewContext(32, 0, false)
	defer c.Free()
	const n = 1000 // not a multiple of the vector width: the tail is covered too
	var ts [2][4]Tensor
	for i := range ts {
		for j := range ts[i] {
			ts[i][j] = c.New(F32, 10, n/10)
		}
	}
	ts[0][0].SetParam() // ggml_opt_step_adamw insists
	hp, scale := c.New(F32, 7), c.New(F32, 1)
	buf, err := b.Alloc(c)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	init := make([][]float32, 4)
	for j := range init {
		init[j] = make([]float32, n)
		for i := range init[j] {
			init[j][i] = float32(math.Sin(float64(i*(j+1)))) * 0.1
			if j == 3 {
				init[j][i] *= init[j][i] // v >= 0
			}
		}
	}
	for i := range ts {
		for j := range ts[i] {
			ts[i][j].SetF32(init[j])
		}
	}
	hp.SetF32([]float32{1e-3, 0.9, 0.999, 1e-8, 0.01, 1 / (1 - 0.9*0.9), 1 / (1 - 0.999*0.999)})
	scale.SetF32([]float32{0.37})
	gc := NewContext(16, 16, false)
	defer gc.Free()
	g := gc.NewGraph(16, false)
	g.Expand(gc.AdamWStep(ts[0][0], gc.Mul(ts[0][1], scale), ts[0][2], ts[0][3], hp))
	g.Expand(gc.AdamWScaled(ts[1][0], ts[1][1], ts[1][2], ts[1][3], hp, scale))
	if err := b.AllocGraph(g); err != nil {
		t.Fatal(err)
	}
	if err := b.Compute(g); err != nil {
		t.Fatal(err)
	}
	for _, j := range []int{0, 2, 3} {
		want, got := ts[0][j].F32(), ts[1][j].F32()
		for i := range want {
			if d := math.Abs(float64(want[i] - got[i])); d > 1e-6*math.Max(1, math.Abs(float64(want[i]))) {
				t.Fatalf("tensor %d element %d: %v, ggml %v", j, i, got[i], want[i])
			}
		}
		if want[0] == init[j][0] && want[1] == init[j][1] {
			t.Fatalf("tensor %d did not change", j)
		}
	}
}

func TestSumSquares(t *testing.T) {
	b := testBackend(t)
	c := NewContext(4, 0, false)
	defer c.Free()
	x := c.New(F32, 37, 3) // 111 values: vector part and tail
	buf, err := b.Alloc(c)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	v := make([]float32, 111)
	var want float64
	for i := range v {
		v[i] = float32(i%13) - 6.5
		want += float64(v[i]) * float64(v[i])
	}
	x.SetF32(v)
	gc := NewContext(8, 8, false)
	defer gc.Free()
	s := gc.SumSquares(x)
	g := gc.NewGraph(8, false)
	g.Expand(s)
	if err := b.AllocGraph(g); err != nil {
		t.Fatal(err)
	}
	if err := b.Compute(g); err != nil {
		t.Fatal(err)
	}
	if got := s.F32()[0]; got != float32(want) {
		t.Fatalf("sum of squares %v, want %v", got, want)
	}
}
