package llm

import (
	"math"

	"github.com/evomerge/evomerge/internal/ggml"
)

// Proj names one of a block's projections (the targets LoRA can adapt).
type Proj int

const (
	ProjQ Proj = iota
	ProjK
	ProjV
	ProjO
	ProjGate
	ProjUp
	ProjDown
)

var projNames = [...]string{"q", "k", "v", "o", "gate", "up", "down"}

func (p Proj) String() string { return projNames[p] }

// ParseProj maps "q", "k", "v", "o", "gate", "up", "down" to a Proj.
func ParseProj(s string) (Proj, bool) {
	for i, n := range projNames {
		if n == s {
			return Proj(i), true
		}
	}
	return 0, false
}

// Layer holds one transformer block's weights.
type Layer struct {
	AttnNorm, FFNNorm   ggml.Tensor
	Proj                [7]ggml.Tensor // indexed by Proj
	QBias, KBias, VBias ggml.Tensor    // qwen2 (zero Tensor: none)
	QNorm, KNorm        ggml.Tensor    // qwen3: RMS norm over each head of q and k before RoPE
}

// Weights are the tensors of a model, wherever they live (a loaded model's buffer or a trainer's parameters).
type Weights struct {
	Embed, OutputNorm, Output ggml.Tensor
	RopeFreqs                 ggml.Tensor // Llama 3 frequency divisors (zero Tensor: none)
	Layers                    []Layer
}

// Linear computes w·x for a projection; training replaces it to add LoRA adapters.
type Linear func(layer int, p Proj, w, x ggml.Tensor) ggml.Tensor

// Batch is the input of one forward pass: B sequences of L tokens each.
type Batch struct {
	Tokens ggml.Tensor // I32 [L*B]
	Pos    ggml.Tensor // I32 [L], positions of the L tokens (shared by the B sequences)
	Mask   ggml.Tensor // F32 [T, L]: 0 where a query may attend to a key, -inf elsewhere; T = Past + L
	Rows   ggml.Tensor // I32 [P]: which of the L*B positions to compute logits for (zero Tensor: all)
	L, B   int
	Cache  *KVCache // nil: attend within the batch only
	Past   int      // with a cache: tokens already in it (B must be 1)
	Linear Linear   // nil: plain matrix products
}

// Forward adds the forward pass to g and returns the logits [vocab, P].
func Forward(c *ggml.Context, g ggml.Graph, cfg Config, w *Weights, in Batch) ggml.Tensor {
	lin := in.Linear
	if lin == nil {
		lin = func(_ int, _ Proj, w, x ggml.Tensor) ggml.Tensor { return c.MulMat(w, x) }
	}
	hd, H, Hkv := int64(cfg.HeadDim()), int64(cfg.Heads), int64(cfg.KVHeads)
	L, B := int64(in.L), int64(in.B)
	x := c.GetRows(w.Embed, in.Tokens) // [D, L*B]
	x = c.Reshape3D(x, int64(cfg.Dim), L, B)
	scale := float32(1 / math.Sqrt(float64(hd)))
	rope := cfg.rope()
	// proj is one of q, k, v: the projection, its bias, split into heads, then the per-head norm.
	proj := func(layer int, p Proj, w, bias, norm, h ggml.Tensor, heads int64) ggml.Tensor {
		y := lin(layer, p, w, h)
		if !bias.Nil() {
			y = c.Add(y, bias)
		}
		y = reshape4(c, y, hd, heads, L, B)
		if !norm.Nil() {
			y = c.Mul(c.RMSNorm(y, cfg.NormEps), norm)
		}
		return y
	}
	for i := range w.Layers {
		ly := &w.Layers[i]
		h := c.Mul(c.RMSNorm(x, cfg.NormEps), ly.AttnNorm)
		q := c.RoPEExt(proj(i, ProjQ, ly.Proj[ProjQ], ly.QBias, ly.QNorm, h, H), in.Pos, w.RopeFreqs, rope)
		k := c.RoPEExt(proj(i, ProjK, ly.Proj[ProjK], ly.KBias, ly.KNorm, h, Hkv), in.Pos, w.RopeFreqs, rope)
		v := proj(i, ProjV, ly.Proj[ProjV], ly.VBias, ggml.Tensor{}, h, Hkv)
		var K, V ggml.Tensor // K: [hd, T, Hkv, B]; V: [T, hd, Hkv, B]
		if in.Cache != nil {
			K, V = in.Cache.store(c, g, i, k, v, in.Past, in.L)
		} else {
			K = c.Permute(k, 0, 2, 1, 3)
			V = c.Cont(c.Permute(v, 1, 2, 0, 3))
		}
		Q := c.Permute(q, 0, 2, 1, 3) // [hd, L, H, B]
		if in.Cache != nil {
			// Contiguous queries let the score product take ggml's blocked F32 kernel (a permuted operand
			// falls back to one dot product per score); the copy is small beside the product.
			Q = c.Cont(Q)
		}
		if B > 1 {
			// ggml's matmul backward cannot broadcast kv heads over a 4th dimension: fold the batch into the
			// head dimension. Head h of sequence b becomes h + H·b, which still maps onto kv head h/(H/Hkv) + Hkv·b.
			Q = c.Reshape3D(c.Cont(Q), hd, L, H*B)
			K = c.Reshape3D(c.Cont(K), hd, K.Ne(1), Hkv*B)
			V = c.Reshape3D(V, V.Ne(0), hd, Hkv*B)
		}
		att := c.SoftMax(c.MulMat(K, Q), in.Mask, scale) // [T, L, H(·B)]
		o := c.MulMat(V, att)                            // [hd, L, H(·B)]
		if B > 1 {
			o = c.Reshape4D(o, hd, L, H, B)
		}
		o = c.Cont(c.Permute(o, 0, 2, 1, 3)) // [hd, H, L, B]
		o = c.Reshape3D(o, hd*H, L, B)
		x = c.Add(x, lin(i, ProjO, ly.Proj[ProjO], o))

		h = c.Mul(c.RMSNorm(x, cfg.NormEps), ly.FFNNorm)
		gate := c.SiLU(lin(i, ProjGate, ly.Proj[ProjGate], h))
		up := lin(i, ProjUp, ly.Proj[ProjUp], h)
		x = c.Add(x, lin(i, ProjDown, ly.Proj[ProjDown], c.Mul(gate, up)))
	}
	x = c.Reshape2D(x, int64(cfg.Dim), L*B)
	if !in.Rows.Nil() {
		x = c.GetRows(x, in.Rows) // only the positions whose logits are needed
	}
	x = c.Mul(c.RMSNorm(x, cfg.NormEps), w.OutputNorm)
	return c.MulMat(w.Output, x)
}

func reshape4(c *ggml.Context, t ggml.Tensor, a, b, l, batch int64) ggml.Tensor {
	if batch == 1 {
		return c.Reshape3D(t, a, b, l)
	}
	return c.Reshape4D(t, a, b, l, batch)
}

// CausalMask fills an F32 [past+n, n] mask for n new tokens after past cached ones: token j (at position
// past+j) sees keys 0..past+j. segments, if not nil, gives each new token a segment id; a token then sees
// only the cached prefix and earlier tokens of its own segment (several continuations in one batch).
func CausalMask(past, n int, segments []int) []float32 {
	return causalMask(past, n, past+n, segments)
}

// causalMask is CausalMask with rows of T >= past+n columns: columns from past+n on are masked.
func causalMask(past, n, T int, segments []int) []float32 {
	m := make([]float32, T*n)
	inf := float32(math.Inf(-1))
	for j := 0; j < n; j++ {
		row := m[j*T : (j+1)*T]
		for i := range row {
			switch {
			case i < past:
			case i > past+j:
				row[i] = inf
			case segments != nil && segments[i-past] != segments[j]:
				row[i] = inf
			}
		}
	}
	return m
}
