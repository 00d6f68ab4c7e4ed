package merge

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/safetensors"
)

// chunkingModel: many mid-sized F32 tensors (sizes not multiples of 1024), so a
// per-tensor statistic that depends on where chunks start shows in the output bytes.
func chunkingModel(seed uint64, like []tensorData) []tensorData {
	r := rand.New(rand.NewPCG(seed, 3))
	var ts []tensorData
	for i := 0; i < 24; i++ {
		n := int64(20000 + 777*i)
		x := tensorData{name: fmt.Sprintf("model.layers.%d.mlp.up_proj.weight", i), shape: []int64{n}, data: make([]float32, n)}
		for k := range x.data {
			v := float32(r.NormFloat64() * 0.02)
			if like != nil {
				v = like[i].data[k] + float32(r.NormFloat64()*0.01)
			}
			x.data[k] = v
		}
		ts = append(ts, x)
	}
	return ts
}

// Every method gives the same bytes at any chunk size and parallelism, on tensors
// large enough to span many chunks (chunk sizes that are not multiples of the
// kernels' 1024-element blocks included).
func TestSameBytesAtAnyChunking(t *testing.T) {
	d := t.TempDir()
	tb := chunkingModel(1, nil)
	base := writeST(t, filepath.Join(d, "base"), safetensors.F32, tb)
	a := writeST(t, filepath.Join(d, "a"), safetensors.F32, chunkingModel(2, tb))
	b := writeST(t, filepath.Join(d, "b"), safetensors.F32, chunkingModel(3, tb))
	for _, method := range []string{"slerp", "linear", "ties", "dare_ties"} {
		spec := Spec{Method: method, Base: 0, Seed: 5, OutType: "f32"}
		inputs := []string{base, a, b}
		switch method {
		case "slerp":
			spec.Global = map[string]Param{"t": Const(0.37)}
			inputs = []string{a, b}
		case "linear":
			spec.Base = -1
		default:
			spec.PerModel = []map[string]Param{nil, {"weight": Const(0.6), "density": Const(0.4)}, {"weight": Const(0.5), "density": Const(0.7)}}
		}
		var first []byte
		for i, o := range []Options{{Parallelism: 1}, {Parallelism: 2, ChunkElements: 256}, {Parallelism: 3, ChunkElements: 1280},
			{Parallelism: 2, ChunkElements: 3000}, {Parallelism: 1, ChunkElements: 1 << 14}} {
			out := filepath.Join(d, fmt.Sprintf("%s%d.safetensors", method, i))
			mustMerge(t, inputs, out, spec, o)
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = data
			} else if string(data) != string(first) {
				t.Fatalf("%s: output with options %+v differs from parallelism 1 at the default chunk", method, o)
			}
		}
	}
}
