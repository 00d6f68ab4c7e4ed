package merge

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
)

// llamaGGUF makes a tiny llama in GGUF naming and ggml shape order.
func llamaGGUF(seed uint64, layers, d, ff, vocab int) []tensorData {
	hf := llamaHF(seed, layers, d, ff, vocab)
	var out []tensorData
	for _, x := range hf {
		name := x.name
		name = strings.Replace(name, "model.embed_tokens", "token_embd", 1)
		name = strings.Replace(name, "model.layers.", "blk.", 1)
		name = strings.Replace(name, "input_layernorm", "attn_norm", 1)
		name = strings.Replace(name, "self_attn.q_proj", "attn_q", 1)
		name = strings.Replace(name, "self_attn.k_proj", "attn_k", 1)
		name = strings.Replace(name, "mlp.up_proj", "ffn_up", 1)
		name = strings.Replace(name, "mlp.down_proj", "ffn_down", 1)
		name = strings.Replace(name, "model.norm", "output_norm", 1)
		name = strings.Replace(name, "lm_head", "output", 1)
		shape := make([]int64, len(x.shape))
		for i := range shape {
			shape[i] = x.shape[len(x.shape)-1-i]
		}
		out = append(out, tensorData{name, shape, x.data})
	}
	return out
}

func llamaKVs(layers int) []gguf.KV {
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = "t" + strconv.Itoa(i)
	}
	return []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.file_type", Value: uint32(1)},
		{Key: "llama.block_count", Value: uint32(layers)},
		{Key: "tokenizer.ggml.tokens", Value: toks},
	}
}

func encodeAs(typ gguf.Type, rowLen int64) func([]float32) []byte {
	return func(v []float32) []byte {
		n, _ := typ.BytesFor(int64(len(v)))
		b := make([]byte, n)
		if err := ggml.FromFloat32(ggml.Type(typ), v, b, rowLen); err != nil {
			panic(err)
		}
		return b
	}
}

func readGGUF(t *testing.T, path string) (*gguf.File, map[string][]float32) {
	t.Helper()
	f, fh, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	out := map[string][]float32{}
	for _, ti := range f.Tensors {
		raw := make([]byte, ti.Size)
		if _, err := fh.ReadAt(raw, ti.Offset); err != nil {
			t.Fatal(err)
		}
		v := make([]float32, ti.Elements())
		if err := ggml.ToFloat32(ggml.Type(ti.Type), raw, v); err != nil {
			t.Fatal(err)
		}
		out[ti.Name] = v
	}
	return f, out
}

func TestGGUFQuantizedInputAndPassthrough(t *testing.T) {
	d := t.TempDir()
	const layers, dim = 4, 64
	ta, tb := llamaGGUF(11, layers, dim, 128, 64), llamaGGUF(12, layers, dim, 128, 64)
	a, b := filepath.Join(d, "a.gguf"), filepath.Join(d, "b.gguf")
	writeGGUF(t, a, llamaKVs(layers), ta, gguf.TypeQ8_0, encodeAs(gguf.TypeQ8_0, dim))
	writeGGUF(t, b, llamaKVs(layers), tb, gguf.TypeF16, encodeAs(gguf.TypeF16, dim))
	_, qa := readGGUF(t, a) // dequantized values of a, the reference
	_, fb := readGGUF(t, b)

	out := filepath.Join(d, "lin.gguf")
	res := mustMerge(t, []string{a, b}, out, Spec{Method: "linear", Base: -1, OutType: "f32",
		PerModel: []map[string]Param{{"weight": Const(1)}, {"weight": Const(1)}}}, Options{})
	if len(res.SHA256) != 64 || res.Tensors != len(ta) {
		t.Fatalf("result %+v", res)
	}
	f, got := readGGUF(t, out)
	for _, x := range ta {
		want, g := make([]float64, len(x.data)), got[x.name]
		for i := range want {
			want[i] = (float64(qa[x.name][i]) + float64(fb[x.name][i])) / 2
		}
		assertClose(t, x.name, g, want, 1e-6)
	}
	if ti, _ := f.Tensor("blk.0.attn_q.weight"); ti.Type != gguf.TypeF32 {
		t.Fatalf("out type %s, want F32", ti.Type)
	}
	if ft, _ := f.Uint("general.file_type"); ft != 0 {
		t.Fatalf("general.file_type %d, want 0 (all F32)", ft)
	}

	// frankenmerge: layers 0-1 of a (quantized, copied as is) + layers 1-3 of b
	fr := filepath.Join(d, "franken.gguf")
	mustMerge(t, []string{a, b}, fr, Spec{Method: "passthrough", Base: -1,
		Slices: []Slice{{Model: 0, From: 0, To: 2}, {Model: 1, From: 1, To: 4}}}, Options{})
	f, got = readGGUF(t, fr)
	if n, _ := f.Uint("llama.block_count"); n != 5 {
		t.Fatalf("block_count %d, want 5", n)
	}
	if ti, _ := f.Tensor("blk.1.attn_q.weight"); ti.Type != gguf.TypeQ8_0 {
		t.Fatalf("passthrough changed the type of a quantized layer: %s", ti.Type)
	}
	check := func(outName, srcName string, src map[string][]float32) {
		t.Helper()
		g, w := got[outName], src[srcName]
		if len(g) == 0 || len(g) != len(w) {
			t.Fatalf("%s: %d values, want %d", outName, len(g), len(w))
		}
		for i := range g {
			if math.Abs(float64(g[i]-w[i])) > 1e-3*math.Max(1, math.Abs(float64(w[i]))) {
				t.Fatalf("%s[%d] = %v, want %s[%d] = %v", outName, i, g[i], srcName, i, w[i])
			}
		}
	}
	check("blk.1.attn_q.weight", "blk.1.attn_q.weight", qa)
	check("blk.2.ffn_up.weight", "blk.1.ffn_up.weight", fb)
	check("blk.4.ffn_down.weight", "blk.3.ffn_down.weight", fb)
	check("token_embd.weight", "token_embd.weight", qa)
	if _, ok := got["blk.5.attn_q.weight"]; ok {
		t.Fatal("unexpected layer 5")
	}
}

func TestGGUFVocabularyMismatch(t *testing.T) {
	d := t.TempDir()
	ta := llamaGGUF(1, 2, 32, 64, 64)
	tb := llamaGGUF(2, 2, 32, 64, 65) // one more token: embedding and head rows differ
	a, b := filepath.Join(d, "a.gguf"), filepath.Join(d, "b.gguf")
	writeGGUF(t, a, llamaKVs(2), ta, gguf.TypeF16, encodeAs(gguf.TypeF16, 32))
	kb := llamaKVs(2)
	writeGGUF(t, b, kb, tb, gguf.TypeF16, encodeAs(gguf.TypeF16, 32))
	_, err := Merge(t.Context(), []string{a, b}, filepath.Join(d, "o.gguf"), Spec{Method: "linear", Base: -1}, Options{})
	if err == nil || !strings.Contains(err.Error(), "token_embd.weight") {
		t.Fatalf("want an error naming token_embd.weight, got %v", err)
	}
	// same shapes, different token strings
	kb[3].Value = append([]string{"other"}, kb[3].Value.([]string)[1:]...)
	writeGGUF(t, b, kb, llamaGGUF(2, 2, 32, 64, 64), gguf.TypeF16, encodeAs(gguf.TypeF16, 32))
	_, err = Merge(t.Context(), []string{a, b}, filepath.Join(d, "o.gguf"), Spec{Method: "linear", Base: -1}, Options{})
	if err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.tokens") {
		t.Fatalf("want a vocabulary error, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(d, "o.gguf")); !os.IsNotExist(err) {
		t.Fatal("output exists after a failed merge")
	}
}
