package merge

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// tensorData is one tensor of a test model (safetensors shape order).
type tensorData struct {
	name  string
	shape []int64
	data  []float32
}

// writeST writes a safetensors folder (model.safetensors + config.json) with dtype dt.
func writeST(t *testing.T, dir string, dt safetensors.DType, ts []tensorData) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	infos := make([]safetensors.TensorInfo, len(ts))
	for i, x := range ts {
		infos[i] = safetensors.TensorInfo{Name: x.name, DType: dt, Shape: x.shape}
	}
	var buf bytes.Buffer
	w, err := safetensors.NewWriter(&buf, map[string]string{"format": "pt"}, infos)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		es, _ := dt.Size()
		raw := make([]byte, int64(len(x.data))*es)
		if err := safetensors.Encode(dt, x.data, raw); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteTensor(x.name, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, safetensors.SingleName), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 3, "torch_dtype": "float32", "vocab_size": 16}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"BPE"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readAll returns every tensor of a safetensors file or folder as float32.
func readAll(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	m, err := safetensors.OpenModel(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := map[string][]float32{}
	for _, x := range m.Tensors {
		raw := make([]byte, x.Size)
		if _, err := x.File.ReadAt(raw, x.Offset); err != nil {
			t.Fatal(err)
		}
		v := make([]float32, x.Elements())
		if err := safetensors.Decode(x.DType, raw, v); err != nil {
			t.Fatal(err)
		}
		out[x.Name] = v
	}
	return out
}

// llamaHF makes a tiny llama-shaped HF model with random weights from seed.
func llamaHF(seed uint64, layers, d, ff, vocab int) []tensorData {
	r := rand.New(rand.NewPCG(seed, 7))
	rnd := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * s)
		}
		return v
	}
	ts := []tensorData{{"model.embed_tokens.weight", []int64{int64(vocab), int64(d)}, rnd(vocab*d, 0.02)}}
	for l := 0; l < layers; l++ {
		p := "model.layers." + strconv.Itoa(l) + "."
		ts = append(ts,
			tensorData{p + "input_layernorm.weight", []int64{int64(d)}, rnd(d, 0.1)},
			tensorData{p + "self_attn.q_proj.weight", []int64{int64(d), int64(d)}, rnd(d*d, 0.02)},
			tensorData{p + "self_attn.k_proj.weight", []int64{int64(d), int64(d)}, rnd(d*d, 0.02)},
			tensorData{p + "mlp.up_proj.weight", []int64{int64(ff), int64(d)}, rnd(ff*d, 0.02)},
			tensorData{p + "mlp.down_proj.weight", []int64{int64(d), int64(ff)}, rnd(ff*d, 0.02)},
		)
	}
	ts = append(ts,
		tensorData{"model.norm.weight", []int64{int64(d)}, rnd(d, 0.1)},
		tensorData{"lm_head.weight", []int64{int64(vocab), int64(d)}, rnd(vocab*d, 0.02)})
	return ts
}

func mustMerge(t *testing.T, inputs []string, out string, spec Spec, opts Options) Result {
	t.Helper()
	opts.NoSync = true
	if opts.Parallelism == 0 {
		opts.Parallelism = 2
	}
	res, err := Merge(context.Background(), inputs, out, spec, opts)
	if err != nil {
		t.Fatalf("merge %s: %v", spec.Method, err)
	}
	return res
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func assertClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !near(float64(got[i]), want[i], tol) {
			t.Fatalf("%s[%d] = %v, want %v (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

// writeGGUF writes a GGUF model with the given tensors (ggml shape order) and type.
func writeGGUF(t *testing.T, path string, kvs []gguf.KV, ts []tensorData, typ gguf.Type, encode func([]float32) []byte) {
	t.Helper()
	infos := make([]gguf.TensorInfo, len(ts))
	for i, x := range ts {
		tt := typ
		if len(x.shape) == 1 {
			tt = gguf.TypeF32
		}
		infos[i] = gguf.TensorInfo{Name: x.name, Shape: x.shape, Type: tt}
	}
	var buf bytes.Buffer
	w, err := gguf.NewWriter(&buf, kvs, infos)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range ts {
		var raw []byte
		if infos[i].Type == gguf.TypeF32 {
			raw = make([]byte, 4*len(x.data))
			safetensors.Encode(safetensors.F32, x.data, raw)
		} else {
			raw = encode(x.data)
		}
		if err := w.WriteTensor(x.name, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}
