package merge

import (
	"fmt"
	"math"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// Quantized GGUF parents are widened with ggml's own dequantization kernels, so
// every block format ggml reads is supported and matches llama.cpp bit for bit.
// Float conversions go through ggml too: its F16C/AVX kernels are far faster than
// portable Go and round the same way (nearest even).
func init() {
	dequantize = func(t gguf.Type, src []byte, dst []float32) error {
		return ggml.ToFloat32(ggml.Type(t), src, dst)
	}
	decodeFloat = func(dt safetensors.DType, src []byte, dst []float32) error {
		t, err := ggmlFloat(dt)
		if err != nil {
			return err
		}
		return ggml.ToFloat32(t, src, dst)
	}
	encodeFloat = func(dt safetensors.DType, src []float32, dst []byte) error {
		t, err := ggmlFloat(dt)
		if err != nil {
			return err
		}
		if err := ggml.FromFloat32(t, src, dst, int64(len(src))); err != nil {
			return err
		}
		if t == ggml.BF16 {
			// ggml flushes float32 subnormals to zero in BF16; keep them like the
			// portable encoder and PyTorch do
			for i, v := range src {
				if b := math.Float32bits(v); b&0x7f800000 == 0 && b&0x7fffff != 0 {
					h := safetensors.FloatToBF16(v)
					dst[2*i], dst[2*i+1] = byte(h), byte(h>>8)
				}
			}
		}
		return nil
	}
}

func ggmlFloat(dt safetensors.DType) (ggml.Type, error) {
	switch dt {
	case safetensors.F32:
		return ggml.F32, nil
	case safetensors.F16:
		return ggml.F16, nil
	case safetensors.BF16:
		return ggml.BF16, nil
	}
	return 0, fmt.Errorf("dtype %s is not a float type", dt)
}
