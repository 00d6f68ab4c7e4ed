package train

import (
	"context"
	"math"
	"testing"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
)

// quantizedPair returns a base whose matrices are stored as typ and a second base holding exactly the F32
// values the first one dequantizes to.
func quantizedPair(t *testing.T, cfg llm.Config, typ ggml.Type) (q, f *llm.Model) {
	t.Helper()
	cfg.Vocab = llm.ByteVocabLen
	src, err := llm.NewTiny(cfg, 11, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var qSpecs, fSpecs []llm.TensorSpec
	qData, fData := map[string][]byte{}, map[string][]byte{}
	for _, s := range src.Specs() {
		v, err := src.TensorF32(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		qs := s
		if len(s.Shape) > 1 {
			qs.Type = gguf.Type(typ)
		}
		b := make([]byte, ggml.RowSize(ggml.Type(qs.Type), int64(len(v))))
		if err := ggml.FromFloat32(ggml.Type(qs.Type), v, b, s.Shape[0]); err != nil {
			t.Fatal(err)
		}
		if err := ggml.ToFloat32(ggml.Type(qs.Type), b, v); err != nil {
			t.Fatal(err)
		}
		fb := make([]byte, 4*len(v))
		if err := ggml.FromFloat32(ggml.F32, v, fb, s.Shape[0]); err != nil {
			t.Fatal(err)
		}
		qSpecs, fSpecs = append(qSpecs, qs), append(fSpecs, s)
		qData[s.Name], fData[s.Name] = b, fb
	}
	if q, err = llm.FromHost(cfg, llm.ByteTokenizer{}, nil, qSpecs, qData, llm.Options{Threads: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	if f, err = llm.FromHost(cfg, llm.ByteTokenizer{}, nil, fSpecs, fData, llm.Options{Threads: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return q, f
}

// LoRA over a base kept in its own type (F16, BF16, Q8_0, Q4_K) follows LoRA over the F32 values that base
// stands for: the loss after 5 steps agrees to 1e-4, and merging says which tensors were quantized again.
func TestLoRAOverStoredTypeMatchesDequantizedCopy(t *testing.T) {
	small := tiny
	wide := llm.Config{Dim: 256, Layers: 1, Heads: 4, KVHeads: 2, FFN: 512, Context: 64, RopeBase: 10000, NormEps: 1e-5}
	for _, tc := range []struct {
		typ ggml.Type
		cfg llm.Config
	}{{ggml.F16, small}, {ggml.BF16, small}, {ggml.Q8_0, small}, {ggml.Q4_K, wide}} {
		t.Run(ggml.TypeName(tc.typ), func(t *testing.T) {
			q, f := quantizedPair(t, tc.cfg, tc.typ)
			cfg := Config{Method: "lora", Steps: 5, LR: 1e-2, BatchSize: 4, Rank: 4, Targets: []string{"q", "v", "down"}, Seed: 3}
			run := func(base *llm.Model) (Result, *llm.Model) {
				out, res, err := Run(context.Background(), Job{Base: base, Data: qa, Config: cfg})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(out.Close)
				return res, out
			}
			rq, mq := run(q)
			rf, _ := run(f)
			if d := math.Abs(rq.FinalLoss - rf.FinalLoss); d > 1e-4 {
				t.Fatalf("loss after 5 steps: %s base %.6f, its F32 copy %.6f (|d| = %.2e > 1e-4)", ggml.TypeName(tc.typ), rq.FinalLoss, rf.FinalLoss, d)
			}
			t.Logf("%s: loss %.6f vs F32 copy %.6f", ggml.TypeName(tc.typ), rq.FinalLoss, rf.FinalLoss)
			wantRequant := 0
			if ggml.IsQuantized(tc.typ) {
				wantRequant = 3 * tc.cfg.Layers
			}
			if len(rq.Requantized) != wantRequant {
				t.Fatalf("Requantized lists %d tensors, want %d: %v", len(rq.Requantized), wantRequant, rq.Requantized)
			}
			for _, s := range mq.Specs() {
				if len(s.Shape) > 1 && ggml.Type(s.Type) != tc.typ {
					t.Fatalf("merged %s is %v, want the base's %s", s.Name, s.Type, ggml.TypeName(tc.typ))
				}
			}
		})
	}
}
