package ggml

/*
#include "ggml.h"
*/
import "C"

// RoPE modes (include/ggml.h GGML_ROPE_TYPE_*): Norm rotates adjacent pairs (i, i+1), the original llama
// layout; NeoX rotates (i, i+dims/2), the layout of GPT-NeoX, Qwen and Hugging Face checkpoints.
const (
	RoPENorm = 0
	RoPENeoX = 2
)

// RoPEOptions are the parameters of a rotary position embedding without YaRN.
type RoPEOptions struct {
	Dims      int     // rotated values at the start of each head (the rest pass through)
	Mode      int     // RoPENorm or RoPENeoX
	Base      float32 // theta_i = pos * FreqScale * Base^(-2i/Dims) / factor_i
	FreqScale float32 // 1/linear-scaling factor (0: 1)
}

// RoPEExt rotates each head of a ([headDim, heads, n, ...]) by pos (I32 [n]). freqs, when not the zero Tensor,
// is an F32 [Dims/2] of per-frequency divisors (Llama 3's rope_freqs.weight). It is differentiable in a but
// not in freqs (ggml has no gradient for frequency factors).
func (c *Context) RoPEExt(a, pos, freqs Tensor, o RoPEOptions) Tensor {
	scale := o.FreqScale
	if scale == 0 {
		scale = 1
	}
	// ext_factor 0 turns YaRN off; attn_factor 1; beta_fast/slow at llama.cpp's defaults (unused without YaRN).
	return Tensor{C.ggml_rope_ext(c.c, a.t, pos.t, freqs.t, C.int(o.Dims), C.int(o.Mode), 0, C.float(o.Base),
		C.float(scale), 0, 1, 32, 1)}
}
