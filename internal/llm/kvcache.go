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

func (kc *KVCache) free() {
	kc.buf.Free()
	kc.ctx.Free()
}

// store writes the new keys and values (k, v: [hd, Hkv, n]) at positions past..past+n-1 of the cache and
// returns views over positions 0..past+n-1 laid out for attention: K [hd, T, Hkv], V [T, hd, Hkv].
func (kc *KVCache) store(c *ggml.Context, g ggml.Graph, layer int, k, v ggml.Tensor, past, n int) (ggml.Tensor, ggml.Tensor) {
	hd, hkv := k.Ne(0), k.Ne(1)
	kt, vt := kc.k[layer], kc.v[layer]
	row := kt.Nb(1)
	// The copies are expanded first so they run before the attention reads the cache.
	g.Expand(c.Cpy(c.Reshape2D(k, hd*hkv, int64(n)), c.View2D(kt, hd*hkv, int64(n), row, int64(past)*row)))
	g.Expand(c.Cpy(c.Reshape2D(v, hd*hkv, int64(n)), c.View2D(vt, hd*hkv, int64(n), row, int64(past)*row)))
	T := int64(past + n)
	K := c.Permute(c.View3D(kt, hd, hkv, T, hd*4, row, 0), 0, 2, 1, 3)
	V := c.Cont(c.Permute(c.View3D(vt, hd, hkv, T, hd*4, row, 0), 1, 2, 0, 3))
	return K, V
}
