package ggml

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gemmCase computes one product through ProductsToGEMM on threads threads and returns it with the exact
// (float64) result. kind: "mul_mat" a[K,M]·x[K,N]; "out_prod" a[M,K] ⊗ b[N,K]; "out_prod_t" a[M,K] ⊗
// transpose(y[K,N]) (the view ggml's matmul backward makes).
func gemmCase(t *testing.T, kind string, M, N, K, threads int) (got []float32, want []float64) {
	t.Helper()
	b, err := NewBackend(BackendOptions{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := NewContext(8, 0, false)
	defer c.Free()
	var sa, sb [2]int64 // element strides of A(m,k), B(n,k) in the host arrays
	var x, y Tensor
	switch kind {
	case "mul_mat":
		x, y = c.New(F32, int64(K), int64(M)), c.New(F32, int64(K), int64(N))
		sa, sb = [2]int64{int64(K), 1}, [2]int64{int64(K), 1}
	case "out_prod":
		x, y = c.New(F32, int64(M), int64(K)), c.New(F32, int64(N), int64(K))
		sa, sb = [2]int64{1, int64(M)}, [2]int64{1, int64(N)}
	case "out_prod_t":
		x, y = c.New(F32, int64(M), int64(K)), c.New(F32, int64(K), int64(N))
		sa, sb = [2]int64{1, int64(M)}, [2]int64{int64(K), 1}
	}
	buf, err := b.Alloc(c)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	rng := rand.New(rand.NewPCG(uint64(M*N), uint64(K)))
	av, bv := make([]float32, M*K), make([]float32, N*K)
	for i := range av {
		av[i] = float32(rng.NormFloat64())
	}
	for i := range bv {
		bv[i] = float32(rng.NormFloat64())
	}
	x.SetF32(av)
	y.SetF32(bv)
	gc := NewContext(16, 64, false)
	defer gc.Free()
	var out Tensor
	switch kind {
	case "mul_mat":
		out = gc.MulMat(x, y)
	case "out_prod":
		out = gc.OutProd(x, y)
	case "out_prod_t":
		out = gc.OutProd(x, gc.Transpose(y))
	}
	g := gc.NewGraph(64, false)
	g.Expand(out)
	if n := g.ProductsToGEMM(gc); n != 1 {
		t.Fatalf("%s: ProductsToGEMM changed %d nodes, want 1", kind, n)
	}
	if err := b.AllocGraph(g); err != nil {
		t.Fatal(err)
	}
	if err := b.Compute(g); err != nil {
		t.Fatal(err)
	}
	if out.Ne(0) != int64(M) || out.Ne(1) != int64(N) {
		t.Fatalf("%s: shape %v", kind, out.Shape())
	}
	want = make([]float64, M*N)
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			var s float64
			for k := 0; k < K; k++ {
				s += float64(av[int64(m)*sa[0]+int64(k)*sa[1]]) * float64(bv[int64(n)*sb[0]+int64(k)*sb[1]])
			}
			want[n*M+m] = s
		}
	}
	return out.F32(), want
}

// The GEMM matches exact products on shapes with every kind of edge (partial register tiles, several k and
// m blocks) for all three operand layouts, and gives the same bytes on 1 and 2 threads.
func TestGEMMMatchesExact(t *testing.T) {
	shapes := [][3]int{{1, 1, 1}, {37, 29, 300}, {64, 13, 5}, {33, 100, 513}, {300, 7, 260}, {8, 40, 64}}
	for _, kind := range []string{"mul_mat", "out_prod", "out_prod_t"} {
		for _, s := range shapes {
			M, N, K := s[0], s[1], s[2]
			t.Run(fmt.Sprintf("%s_%dx%dx%d", kind, M, N, K), func(t *testing.T) {
				got1, want := gemmCase(t, kind, M, N, K, 1)
				got2, _ := gemmCase(t, kind, M, N, K, 2)
				tol := 1e-5 * math.Sqrt(float64(K)) * 4
				for i := range want {
					if d := math.Abs(float64(got1[i]) - want[i]); d > tol {
						t.Fatalf("element %d: %v, want %v", i, got1[i], want[i])
					}
					if math.Float32bits(got1[i]) != math.Float32bits(got2[i]) {
						t.Fatalf("element %d: %v on 1 thread, %v on 2", i, got1[i], got2[i])
					}
				}
			})
		}
	}
}
