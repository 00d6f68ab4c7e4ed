package llm

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
)

// WriteSynthetic writes a model of cfg with random weights as a GGUF file at path, one tensor at a time (a
// 1.1B-parameter model needs only its largest tensor in memory), and returns the file's sha256. It is what the
// real-size benchmarks run: a model of a real shape and vocabulary that llama.cpp and the engine both load,
// made here rather than downloaded. Weights are uniform with standard deviation 0.02 (the blocks' output
// projections scaled by 1/sqrt(2·layers)), norms 1, drawn from a PRNG seeded with seed, then stored as t.
// The vocabulary is the byte-level one padded with unused tokens up to cfg.Vocab (text still tokenizes to
// byte tokens; the padding only gives the embedding and output matrices their real size).
func WriteSynthetic(path string, cfg Config, t gguf.Type, seed uint64) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	if cfg.Vocab < ByteVocabLen {
		return "", fmt.Errorf("llm: a synthetic model needs a vocabulary of at least %d tokens, got %d", ByteVocabLen, cfg.Vocab)
	}
	specs := cfg.Specs(t)
	infos := make([]gguf.TensorInfo, len(specs))
	for i, s := range specs {
		infos[i] = gguf.TensorInfo{Name: s.Name, Shape: s.Shape, Type: s.Type}
	}
	kvs := []gguf.KV{{Key: "general.architecture", Value: cfg.Architecture()}}
	if ft, ok := fileType(specs); ok {
		kvs = append(kvs, gguf.KV{Key: "general.file_type", Value: ft})
	}
	kvs = append(kvs, gguf.KV{Key: "general.name", Value: "evomerge-synthetic"})
	kvs = append(kvs, cfg.Metadata()...)
	kvs = append(kvs, paddedByteVocabMetadata(cfg.Vocab)...)
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	residual := 1 / math.Sqrt(2*float64(cfg.Layers))
	return WriteFileAtomic(path, func(w io.Writer) error {
		gw, err := gguf.NewWriter(w, kvs, infos)
		if err != nil {
			return err
		}
		var vals []float32
		var raw []byte
		for _, s := range specs {
			n := int64(1)
			for _, d := range s.Shape {
				n *= d
			}
			vals = slicesGrow(vals, int(n))
			switch {
			case strings.HasSuffix(s.Name, ".bias"):
				clear(vals)
			case len(s.Shape) == 1: // norms (and rope_freqs as factors of 1)
				for i := range vals {
					vals[i] = 1
				}
			default:
				// Uniform on [-a, a] has standard deviation a/sqrt(3): far cheaper to draw than normals.
				a := float32(0.02 * math.Sqrt(3))
				if strings.HasSuffix(s.Name, "attn_output.weight") || strings.HasSuffix(s.Name, "ffn_down.weight") {
					a *= float32(residual)
				}
				for i := range vals {
					vals[i] = (2*rng.Float32() - 1) * a
				}
			}
			size := ggml.RowSize(ggml.Type(s.Type), n)
			raw = slicesGrowBytes(raw, int(size))
			if err := ggml.FromFloat32(ggml.Type(s.Type), vals, raw, s.Shape[0]); err != nil {
				return fmt.Errorf("llm: synthetic %s: %w", s.Name, err)
			}
			if err := gw.WriteTensor(s.Name, raw); err != nil {
				return err
			}
		}
		return gw.Close()
	})
}

func slicesGrow(v []float32, n int) []float32 {
	if cap(v) < n {
		return make([]float32, n)
	}
	return v[:n]
}

func slicesGrowBytes(v []byte, n int) []byte {
	if cap(v) < n {
		return make([]byte, n)
	}
	return v[:n]
}

// paddedByteVocabMetadata is the byte vocabulary's tokenizer metadata with unused tokens appended up to n.
func paddedByteVocabMetadata(n int) []gguf.KV {
	kvs := ByteTokenizer{}.metadata()
	tokens, scores, types := byteVocab()
	for i := len(tokens); i < n; i++ {
		tokens = append(tokens, fmt.Sprintf("<unused%d>", i))
		scores = append(scores, 0)
		types = append(types, 5) // UNUSED: never produced by tokenizing text
	}
	for i := range kvs {
		switch kvs[i].Key {
		case "tokenizer.ggml.tokens":
			kvs[i].Value = tokens
		case "tokenizer.ggml.scores":
			kvs[i].Value = scores
		case "tokenizer.ggml.token_type":
			kvs[i].Value = types
		}
	}
	return kvs
}
