package llm

import (
	"github.com/evomerge/evomerge/internal/ggml"
)

// KVCache keeps the keys and values of tokens already processed, so that a shared context is computed once and
// generation processes one new token per step.
type KVCache struct {
	ctx  *ggml.Context
	buf  *ggml.Buffer
	k, v []ggml.Tensor // per layer, F32 [headDim*kvHeads, size]
	size int
	// Positions below finite hold numbers (written or zeroed). Attention reads up to kvPad-1 positions past
	// the ones written (masked out), and a masked score still multiplies its value (0 * NaN is NaN); zeroing
	// only as far as steps reach keeps untouched cache pages out of memory.
	finite int
}

func newKVCache(b *ggml.Backend, cfg Config, size int) (*KVCache, error) {
	kc := &KVCache{ctx: ggml.NewContext(2*cfg.Layers, 0, false), size: size}
	width := int64(cfg.HeadDim() * cfg.KVHeads)
	for i := 0; i < cfg.Layers; i++ {
		kc.k = append(kc.k, kc.ctx.New(ggml.F32, width, int64(size)))
		kc.v = append(kc.v, kc.ctx.New(ggml.F32, width, int64(size)))
	}
	buf, err := b.Alloc(kc.ctx)
	if err != nil {
		kc.ctx.Free()
		return nil, err
	}
	kc.buf = buf
	return kc, nil
}

// kvPad rounds the cache positions attention reads up to a multiple of 32: with a row length that is a multiple
// of 16, ggml's CPU backend takes its blocked F32 matrix kernel (llamafile's tinyBLAS) for the attention
// products instead of one dot product per score. llama.cpp pads its cache views the same way (to 256).
const kvPad = 32

// span is how many cache positions a step reads when the sequence ends at position end: end rounded up to
// kvPad, or end itself where that would pass the cache's size. The extra positions are masked.
func (kc *KVCache) span(end int) int {
	if p := (end + kvPad - 1) / kvPad * kvPad; p <= kc.size {
		return p
	}
	return end
}

// readable makes positions below span hold finite numbers before a step reads them.
func (kc *KVCache) readable(span int) {
	if span <= kc.finite {
		return
	}
	row := kc.k[0].Nb(1)
	for i := range kc.k {
		kc.k[i].ZeroRange(int64(kc.finite)*row, int64(span-kc.finite)*row)
		kc.v[i].ZeroRange(int64(kc.finite)*row, int64(span-kc.finite)*row)
	}
	kc.finite = span
}

func (kc *KVCache) free() {
	kc.buf.Free()
	kc.ctx.Free()
}

// store writes the new keys and values (k, v: [hd, Hkv, n]) at positions past..past+n-1 of the cache and
// returns views over positions 0..T-1 laid out for attention: K [hd, T, Hkv], V [T, hd, Hkv], where T is
// kc.span(past+n) (the mask hides positions from past+n on).
func (kc *KVCache) store(c *ggml.Context, g ggml.Graph, layer int, k, v ggml.Tensor, past, n int) (ggml.Tensor, ggml.Tensor) {
	hd, hkv := k.Ne(0), k.Ne(1)
	kt, vt := kc.k[layer], kc.v[layer]
	row := kt.Nb(1)
	// The copies are expanded first so they run before the attention reads the cache.
	g.Expand(c.Cpy(c.Reshape2D(k, hd*hkv, int64(n)), c.View2D(kt, hd*hkv, int64(n), row, int64(past)*row)))
	g.Expand(c.Cpy(c.Reshape2D(v, hd*hkv, int64(n)), c.View2D(vt, hd*hkv, int64(n), row, int64(past)*row)))
	T := int64(kc.span(past + n))
	K := c.Permute(c.View3D(kt, hd, hkv, T, hd*4, row, 0), 0, 2, 1, 3)
	V := c.Cont(c.Permute(c.View3D(vt, hd, hkv, T, hd*4, row, 0), 1, 2, 0, 3))
	return K, V
}
