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

// Batched products (grouped-query broadcast of a over b's planes, permuted operands as attention makes them)
// give what ggml's own kernels give.
func TestGEMMBatchedMatchesGGML(t *testing.T) {
	const K, M, N, P, G = 24, 19, 33, 6, 2 // P planes of b, a has P/G planes
	build := func(gc *Context, a, b, bp, bq Tensor) []Tensor {
		return []Tensor{
			gc.MulMat(a, b),                          // a [K,M,P/G], b [K,N,P]
			gc.MulMat(a, gc.Permute(bq, 0, 2, 1, 3)), // b read through a permuted view [K,N,P] of [K,P,N]
			gc.OutProd(gc.Cont(gc.Permute(a, 1, 0, 2, 3)), gc.Permute(bp, 0, 1, 2, 3)), // [M,K,P/G] ⊗ [N,K,P]
		}
	}
	var results [2][][]float32
	for pass, threads := range []int{1, 2} {
		be, err := NewBackend(BackendOptions{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		c := NewContext(8, 0, false)
		a, b, bp, bq := c.New(F32, K, M, P/G), c.New(F32, K, N, P), c.New(F32, N, K, P), c.New(F32, K, P, N)
		buf, err := be.Alloc(c)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for _, x := range []Tensor{a, b, bp, bq} {
			v := make([]float32, x.Elements())
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			x.SetF32(v)
		}
		for _, gemm := range []bool{false, true} {
			gc := NewContext(64, 64, false)
			outs := build(gc, a, b, bp, bq)
			g := gc.NewGraph(64, false)
			for _, o := range outs {
				g.Expand(o)
			}
			if gemm {
				if n := g.ProductsToGEMM(gc); n != len(outs) {
					t.Fatalf("ProductsToGEMM changed %d nodes, want %d", n, len(outs))
				}
			}
			if err := be.AllocGraph(g); err != nil {
				t.Fatal(err)
			}
			if err := be.Compute(g); err != nil {
				t.Fatal(err)
			}
			var got [][]float32
			for _, o := range outs {
				got = append(got, o.F32())
			}
			if !gemm {
				results[0] = got
				gc.Free()
				continue
			}
			for i := range got {
				for j := range got[i] {
					if d := math.Abs(float64(got[i][j] - results[0][i][j])); d > 1e-4 {
						t.Fatalf("%d threads, product %d element %d: %v, ggml %v", threads, i, j, got[i][j], results[0][i][j])
					}
				}
			}
			if pass == 1 {
				for i := range got {
					for j := range got[i] {
						if math.Float32bits(got[i][j]) != math.Float32bits(results[1][i][j]) {
							t.Fatalf("product %d element %d differs between 1 and 2 threads", i, j)
						}
					}
				}
			}
			results[1] = got
			gc.Free()
		}
		buf.Free()
		c.Free()
		be.Close()
	}
}
