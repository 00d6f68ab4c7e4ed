package merge

import (
	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
)

// Quantized GGUF parents are widened with ggml's own dequantization kernels, so
// every block format ggml reads is supported and matches llama.cpp bit for bit.
func init() {
	dequantize = func(t gguf.Type, src []byte, dst []float32) error {
		return ggml.ToFloat32(ggml.Type(t), src, dst)
	}
}
