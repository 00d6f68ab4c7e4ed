package merge

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/safetensors"
)

// The fused kernels' conversions must be the Go codecs bit for bit: every half and
// bfloat16 pattern decodes the same; random floats, edge cases, NaN and Inf encode
// the same (runs not a multiple of the vector width included).
func TestFusedConversionsMatchGo(t *testing.T) {
	raw := make([]byte, 2<<16)
	for i := 0; i < 1<<16; i++ {
		raw[2*i], raw[2*i+1] = byte(i), byte(i>>8)
	}
	for _, et := range []elemType{typeF16, typeBF16} {
		a, b := make([]float32, 1<<16), make([]float32, 1<<16)
		safetensors.Decode(et.st, raw, a)
		toFloatC(et, raw, b)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
				t.Fatalf("%s decode of %04x: go %v C %v", et.name, i, a[i], b[i])
			}
		}
	}
	vals := make([]float32, 0, 1<<20+64)
	x := uint32(99)
	for len(vals) < 1<<20 {
		x = x*1664525 + 1013904223
		vals = append(vals, math.Float32frombits(x))
		if len(vals)%3 == 0 { // values in the half range, where rounding matters
			vals = append(vals, math.Float32frombits(0x33000000+x%0x0c000000))
		}
	}
	inf := float32(math.Inf(1))
	vals = append(vals, 0, float32(math.Copysign(0, -1)), 65504, 65519.99, 65520, -65520, 1e-8, 5.96e-8, 2.98e-8, 2.9802322e-08,
		1+1.0/2048, -(1 + 3.0/2048), inf, -inf, float32(math.NaN()), math.Float32frombits(0x7f800001), math.Float32frombits(0xffc12345),
		math.Float32frombits(1), math.Float32frombits(0x807fffff), 3)
	for _, n := range []int{len(vals), len(vals) - 5, 7, 1} {
		v := vals[len(vals)-n:]
		for _, et := range []elemType{typeF16, typeBF16, typeF32} {
			a, b := make([]byte, et.bytesFor(int64(n))), make([]byte, et.bytesFor(int64(n)))
			safetensors.Encode(et.st, v, a)
			fromFloatC(et, v, b)
			for i := range a {
				if a[i] != b[i] {
					e := i / int(et.blockBytes)
					t.Fatalf("%s encode of %v (%08x): go %x C %x", et.name, v[e], math.Float32bits(v[e]),
						a[e*int(et.blockBytes):(e+1)*int(et.blockBytes)], b[e*int(et.blockBytes):(e+1)*int(et.blockBytes)])
				}
			}
		}
	}
}

// Every method the fused kernels serve gives the unfused path's bytes, for each
// float dtype, at several parallelisms and chunk sizes (chunks not a multiple of the
// kernels' blocks included).
func TestFusedMatchesUnfused(t *testing.T) {
	defer func() { noFuse = false }()
	d := t.TempDir()
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16, safetensors.F32} {
		p := filepath.Join(d, string(dt))
		base := writeST(t, filepath.Join(p, "base"), dt, llamaHF(5, 2, 48, 96, 40))
		a := writeST(t, filepath.Join(p, "a"), dt, llamaHF(6, 2, 48, 96, 40))
		b := writeST(t, filepath.Join(p, "b"), dt, llamaHF(7, 2, 48, 96, 40))
		c := writeST(t, filepath.Join(p, "c"), dt, llamaHF(8, 2, 48, 96, 40))
		for _, method := range []string{"linear", "slerp", "task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs_ties"} {
			spec := Spec{Method: method, Base: 0, Seed: 77}
			inputs := []string{base, a, b, c}
			switch method {
			case "linear":
				spec.Base = -1
				spec.PerModel = []map[string]Param{{"weight": Const(0.2)}, {"weight": Const(0.5)}, {"weight": Const(0.1)}, {"weight": Const(0.2)}}
			case "slerp":
				spec.Global = map[string]Param{"t": {Anchors: []float64{0.2, 0.8}}}
				inputs = []string{a, b}
			case "task_arithmetic":
				spec.PerModel = []map[string]Param{nil, {"weight": Const(0.6)}, {"weight": Const(0.5)}, {"weight": Const(0.3)}}
			default:
				spec.PerModel = []map[string]Param{nil, {"weight": Const(0.6), "density": Const(0.4)},
					{"weight": Const(0.5), "density": Const(0.7)}, {"weight": Const(0.3), "density": Const(0.5)}}
			}
			for _, out := range []string{"", "bf16", "f32"} {
				spec.OutType = out
				var first []byte
				for i, o := range []Options{{Parallelism: 1}, {Parallelism: 3}, {Parallelism: 2, ChunkElements: 256}, {Parallelism: 3, ChunkElements: 1000}} {
					var got [2][]byte
					for f := range got {
						noFuse = f == 0
						dst := filepath.Join(d, "out.safetensors")
						mustMerge(t, inputs, dst, spec, o)
						data, err := os.ReadFile(dst)
						if err != nil {
							t.Fatal(err)
						}
						got[f] = data
					}
					if string(got[0]) != string(got[1]) {
						t.Fatalf("%s %s -> %q: fused output (options %+v) differs from the unfused path", dt, method, out, o)
					}
					if i == 0 {
						first = got[1]
					} else if string(got[1]) != string(first) {
						t.Fatalf("%s %s -> %q: fused output with options %+v differs from parallelism 1", dt, method, out, o)
					}
				}
			}
		}
	}
}

// A NaN in a parent is still reported with its tensor and element on the fused path.
func TestFusedReportsNonFinite(t *testing.T) {
	d := t.TempDir()
	ta, tb := llamaHF(1, 1, 16, 32, 16), llamaHF(2, 1, 16, 32, 16)
	tb[0].data[200] = float32(math.Inf(-1))
	a := writeST(t, filepath.Join(d, "a"), safetensors.F16, ta)
	b := writeST(t, filepath.Join(d, "b"), safetensors.F16, tb)
	for _, method := range []string{"linear", "slerp"} {
		spec := Spec{Method: method, Base: -1}
		if method == "slerp" {
			spec.Base, spec.Global = 0, map[string]Param{"t": Const(0.3)}
		}
		_, err := Merge(t.Context(), []string{a, b}, filepath.Join(d, "o.safetensors"), spec, Options{NoSync: true})
		if err == nil || !strings.Contains(err.Error(), "non-finite value -Inf at element 200") || !strings.Contains(err.Error(), "model.embed_tokens.weight") {
			t.Fatalf("%s: err = %v", method, err)
		}
	}
}
