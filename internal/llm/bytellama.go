package llm

// Byte-level llamas made from nothing (NewTiny, train.Pretrain: the demo's
// models) share these; the shape is the caller's.
const (
	ByteLlamaRopeBase = 10000
	ByteLlamaNormEps  = 1e-5
)

// ByteLlamaConfig is the config of a byte-level llama of the given shape: the
// byte vocabulary (ByteVocabLen), RoPE base ByteLlamaRopeBase and RMS-norm
// epsilon ByteLlamaNormEps.
func ByteLlamaConfig(layers, dim, heads, kvHeads, ffn, context int) Config {
	return Config{Vocab: ByteVocabLen, Layers: layers, Dim: dim, Heads: heads, KVHeads: kvHeads, FFN: ffn,
		Context: context, RopeBase: ByteLlamaRopeBase, NormEps: ByteLlamaNormEps}
}
