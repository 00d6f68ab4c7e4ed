package merge

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/safetensors"
)

// bracketModels: tensors past bracketMin whose deltas are gaussian, mostly zero
// (heavy ties), column outliers, or tiny for a few rows, so both the sampled select
// and its fallbacks run.
func bracketModels(seed uint64) (base, a, b []tensorData) {
	r := rand.New(rand.NewPCG(seed, 9))
	const rows, cols = 160, 2048 // 327680 elements
	for i, kind := range []string{"gauss", "zeros", "outliers", "rowscale"} {
		name := fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", i)
		var ts [3]tensorData
		for k := range ts {
			ts[k] = tensorData{name: name, shape: []int64{rows, cols}, data: make([]float32, rows*cols)}
		}
		for e := range ts[0].data {
			bv := float32(r.NormFloat64() * 0.02)
			ts[0].data[e] = bv
			for k := 1; k < 3; k++ {
				d := r.NormFloat64() * 0.002
				switch kind {
				case "zeros":
					if r.IntN(10) < 7 {
						d = 0
					}
				case "outliers":
					if e%cols < 4 {
						d *= 200
					}
				case "rowscale":
					if e/cols < 8 {
						d *= 1e-4
					}
				}
				ts[k].data[e] = bv + float32(d)
			}
		}
		base, a, b = append(base, ts[0]), append(a, ts[1]), append(b, ts[2])
	}
	return
}

// The sampled select gives the exact k-th largest |delta|: the same bytes as the
// histogram passes, for every magnitude method, dtype and chunking.
func TestBracketMatchesHistogram(t *testing.T) {
	defer func(stride int64) { noBracket, sampleStride = false, stride }(sampleStride)
	sampleStride = sampleRun // the whole tensor as the sample: brackets narrow enough at this size
	d := t.TempDir()
	tb, ta, tc := bracketModels(4)
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16} {
		p := filepath.Join(d, string(dt))
		inputs := []string{writeST(t, filepath.Join(p, "base"), dt, tb), writeST(t, filepath.Join(p, "a"), dt, ta), writeST(t, filepath.Join(p, "b"), dt, tc)}
		for _, method := range []string{"ties", "breadcrumbs_ties", "breadcrumbs"} {
			// density 0.99 puts the threshold among the smallest deltas, where the float
			// bits spread wide: the bracket is refused and the histogram passes run
			for _, dens := range []float64{0.05, 0.3, 0.7, 0.99} {
				spec := Spec{Method: method, Base: 0, PerModel: []map[string]Param{nil, {"weight": Const(0.6), "density": Const(dens)},
					{"weight": Const(0.5), "density": Const(0.6)}}}
				var want []byte
				for i, o := range []Options{{Parallelism: 1}, {Parallelism: 2}, {Parallelism: 3, ChunkElements: 3000}} {
					noBracket = i == 0
					hits := bracketHits.Load()
					out := filepath.Join(d, "out.safetensors")
					mustMerge(t, inputs, out, spec, o)
					data, err := os.ReadFile(out)
					if err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						want = data
						continue
					}
					if dt == safetensors.F32 && dens < 0.9 && bracketHits.Load()-hits < 2 {
						t.Fatalf("%s %s density %v: the sampled select answered %d tensors, want at least the gaussian and outlier ones", dt, method, dens, bracketHits.Load()-hits)
					}
					if string(data) != string(want) {
						t.Fatalf("%s %s density %v options %+v: sampled select differs from the histogram passes", dt, method, dens, o)
					}
				}
			}
		}
	}
}
