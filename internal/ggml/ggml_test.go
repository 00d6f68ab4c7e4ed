package ggml

import (
	"math"
	"testing"
)

func testBackend(t *testing.T) *Backend {
	t.Helper()
	b, err := NewBackend(BackendOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// MulMat in ggml computes a^T b over the contiguous dimension: out[i,j] = sum_k a[k,i] b[k,j].
func TestMulMatMatchesGo(t *testing.T) {
	b := testBackend(t)
	c := NewContext(8, 64, false)
	defer c.Free()
	const K, M, N = 5, 3, 4
	a := c.New(F32, K, M)
	x := c.New(F32, K, N)
	buf, err := b.Alloc(c)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	av, xv := make([]float32, K*M), make([]float32, K*N)
	for i := range av {
		av[i] = float32(i%7) - 3
	}
	for i := range xv {
		xv[i] = float32(i%5) * 0.5
	}
	a.SetF32(av)
	x.SetF32(xv)
	gc := NewContext(8, 64, false)
	defer gc.Free()
	out := gc.MulMat(a, x)
	g := gc.NewGraph(64, false)
	g.Expand(out)
	if err := b.AllocGraph(g); err != nil {
		t.Fatal(err)
	}
	if err := b.Compute(g); err != nil {
		t.Fatal(err)
	}
	got := out.F32()
	if out.Ne(0) != M || out.Ne(1) != N {
		t.Fatalf("shape %v", out.Shape())
	}
	for j := 0; j < N; j++ {
		for i := 0; i < M; i++ {
			var want float32
			for k := 0; k < K; k++ {
				want += av[i*K+k] * xv[j*K+k]
			}
			if math.Abs(float64(got[j*M+i]-want)) > 1e-5 {
				t.Fatalf("out[%d,%d]=%v want %v", i, j, got[j*M+i], want)
			}
		}
	}
}

func TestConvertRoundTrip(t *testing.T) {
	src := make([]float32, 512)
	for i := range src {
		src[i] = float32(math.Sin(float64(i))) * 2
	}
	for _, typ := range []Type{F32, F16, BF16, Q8_0, Q4_K} {
		dst := make([]byte, RowSize(typ, int64(len(src))))
		if err := FromFloat32(typ, src, dst, 256); err != nil {
			t.Fatalf("%s: %v", TypeName(typ), err)
		}
		back := make([]float32, len(src))
		if err := ToFloat32(typ, dst, back); err != nil {
			t.Fatalf("%s: %v", TypeName(typ), err)
		}
		tol := map[Type]float64{F32: 0, F16: 2e-3, BF16: 2e-2, Q8_0: 3e-2, Q4_K: 0.3}[typ]
		for i := range src {
			if d := math.Abs(float64(src[i] - back[i])); d > tol {
				t.Fatalf("%s: value %d: %v -> %v", TypeName(typ), i, src[i], back[i])
			}
		}
	}
	if err := ToFloat32(Q8_0, make([]byte, 10), make([]float32, 32)); err == nil {
		t.Fatal("short Q8_0 data accepted")
	}
}

func TestUnknownBackend(t *testing.T) {
	if _, err := NewBackend(BackendOptions{Device: "tpu"}); err == nil {
		t.Fatal("unknown device accepted")
	}
	if _, err := NewBackend(BackendOptions{Device: "cuda", CUDALibrary: "/nonexistent/libggml-cuda.so"}); err == nil {
		t.Fatal("missing cuda library accepted")
	}
}
