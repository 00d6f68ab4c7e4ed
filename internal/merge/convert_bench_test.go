package merge

import (
	"math"
	"testing"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// Conversion speed per chunk: pure Go versus ggml's kernels.
func benchConvert(b *testing.B, dt safetensors.DType, useGGML bool, decode bool) {
	const n = defaultChunk
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i%1000-500) * 0.001
	}
	raw := make([]byte, 2*n)
	safetensors.Encode(dt, src, raw)
	gt := ggml.F16
	if dt == safetensors.BF16 {
		gt = ggml.BF16
	}
	b.SetBytes(2 * n)
	for b.Loop() {
		switch {
		case decode && useGGML:
			ggml.ToFloat32(gt, raw, src)
		case decode:
			safetensors.Decode(dt, raw, src)
		case useGGML:
			ggml.FromFloat32(gt, src, raw, n)
		default:
			safetensors.Encode(dt, src, raw)
		}
	}
}

func BenchmarkDecodeF16Go(b *testing.B)    { benchConvert(b, safetensors.F16, false, true) }
func BenchmarkDecodeF16GGML(b *testing.B)  { benchConvert(b, safetensors.F16, true, true) }
func BenchmarkEncodeF16Go(b *testing.B)    { benchConvert(b, safetensors.F16, false, false) }
func BenchmarkEncodeF16GGML(b *testing.B)  { benchConvert(b, safetensors.F16, true, false) }
func BenchmarkDecodeBF16Go(b *testing.B)   { benchConvert(b, safetensors.BF16, false, true) }
func BenchmarkDecodeBF16GGML(b *testing.B) { benchConvert(b, safetensors.BF16, true, true) }
func BenchmarkEncodeBF16Go(b *testing.B)   { benchConvert(b, safetensors.BF16, false, false) }
func BenchmarkEncodeBF16GGML(b *testing.B) { benchConvert(b, safetensors.BF16, true, false) }

// The ggml conversions must give exactly the bytes of the portable Go ones, so a
// build without the fast path writes the same children.
func TestFastConversionsMatchGo(t *testing.T) {
	raw := make([]byte, 2<<16)
	for i := 0; i < 1<<16; i++ {
		raw[2*i], raw[2*i+1] = byte(i), byte(i>>8)
	}
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		a, b := make([]float32, 1<<16), make([]float32, 1<<16)
		safetensors.Decode(dt, raw, a)
		if err := decodeFloat(dt, raw, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
				t.Fatalf("%s decode of %04x: go %v ggml %v", dt, i, a[i], b[i])
			}
		}
	}
	vals := make([]float32, 0, 1<<20)
	x := uint32(12345)
	for len(vals) < cap(vals) {
		x = x*1664525 + 1013904223
		f := math.Float32frombits(x)
		if f != f || math.IsInf(float64(f), 0) {
			continue
		}
		vals = append(vals, f)
	}
	vals = append(vals, 0, -0, 65504, 65520, 1e-8, 5.96e-8, 2.98e-8, 1+1.0/2048, -(1 + 3.0/2048))
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		a, b := make([]byte, 2*len(vals)), make([]byte, 2*len(vals))
		safetensors.Encode(dt, vals, a)
		if err := encodeFloat(dt, vals, b); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(vals); i++ {
			if a[2*i] != b[2*i] || a[2*i+1] != b[2*i+1] {
				t.Fatalf("%s encode of %v: go %02x%02x ggml %02x%02x", dt, vals[i], a[2*i+1], a[2*i], b[2*i+1], b[2*i])
			}
		}
	}
}
