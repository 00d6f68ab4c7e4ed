package merge

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/safetensors"
)

func TestInterpAndNames(t *testing.T) {
	a := []float64{0, 1, 0.5}
	for _, c := range []struct{ pos, want float64 }{{0, 0}, {0.25, 0.5}, {0.5, 1}, {0.75, 0.75}, {1, 0.5}} {
		if got := interp(a, c.pos); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("interp(%v) = %v want %v", c.pos, got, c.want)
		}
	}
	for name, want := range map[string]string{
		"blk.3.attn_norm.weight": ClassNorm, "blk.3.attn_q.weight": ClassAttention, "blk.0.ffn_up.weight": ClassMLP,
		"token_embd.weight": ClassEmbedding, "output.weight": ClassOutput, "blk.1.attn_output.weight": ClassAttention,
		"model.layers.2.self_attn.o_proj.weight": ClassAttention, "model.layers.2.mlp.gate_proj.weight": ClassMLP,
		"model.layers.2.post_attention_layernorm.weight": ClassNorm, "lm_head.weight": ClassOutput,
		"model.embed_tokens.weight": ClassEmbedding, "model.norm.weight": ClassNorm,
	} {
		if got := classOf(name); got != want {
			t.Errorf("classOf(%s) = %s want %s", name, got, want)
		}
	}
	if l, _, _ := layerOf("model.layers.12.mlp.up_proj.weight"); l != 12 {
		t.Errorf("layer %d", l)
	}
	if got := withLayer("blk.3.attn_q.weight", 17); got != "blk.17.attn_q.weight" {
		t.Errorf("withLayer: %s", got)
	}
	if l, _, _ := layerOf("output_norm.weight"); l != -1 {
		t.Errorf("output_norm has layer %d", l)
	}
}

// A gradient weight across 3 layers and a per-class override reach each tensor.
func TestPerLayerGenome(t *testing.T) {
	d := t.TempDir()
	ta, tb := llamaHF(1, 3, 8, 16, 8), llamaHF(2, 3, 8, 16, 8)
	a := writeST(t, filepath.Join(d, "a"), safetensors.F32, ta)
	b := writeST(t, filepath.Join(d, "b"), safetensors.F32, tb)
	spec := Spec{Method: "linear", Base: -1, OutType: "f32", Global: map[string]Param{"normalize": Const(0)},
		PerModel: []map[string]Param{
			{"weight": {Anchors: []float64{1, 0}, ByClass: map[string][]float64{"mlp": {0.25}}}},
			{"weight": {Anchors: []float64{0, 1}, ByClass: map[string][]float64{"mlp": {0.75}}}},
		}}
	// JSON round trip: the workflow hands the genome over as JSON.
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var back Spec
	if err := json.Unmarshal(js, &back); err != nil || !reflect.DeepEqual(back, spec) {
		t.Fatalf("JSON round trip changed the spec: %v\n%s", err, js)
	}
	out := filepath.Join(d, "o")
	mustMerge(t, []string{a, b}, out, back, Options{})
	got := readAll(t, out)
	src := map[string][2][]float32{}
	for i := range ta {
		src[ta[i].name] = [2][]float32{ta[i].data, tb[i].data}
	}
	expect := func(name string, wa float64) {
		t.Helper()
		s := src[name]
		want := make([]float64, len(s[0]))
		for i := range want {
			want[i] = wa*float64(s[0][i]) + (1-wa)*float64(s[1][i])
		}
		assertClose(t, name, got[name], want, 1e-6)
	}
	expect("model.layers.0.self_attn.q_proj.weight", 1)
	expect("model.layers.1.self_attn.q_proj.weight", 0.5)
	expect("model.layers.2.self_attn.q_proj.weight", 0)
	expect("model.layers.1.mlp.up_proj.weight", 0.25)
	expect("model.embed_tokens.weight", 1) // before the layers: position 0
	expect("lm_head.weight", 0)            // after the layers: position 1
	cfg, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if !strings.Contains(string(cfg), `"torch_dtype": "float32"`) {
		t.Fatalf("config.json not copied/edited: %s", cfg)
	}
	if _, err := os.Stat(filepath.Join(out, "tokenizer.json")); err != nil {
		t.Fatal("tokenizer.json not copied")
	}
}

// Same inputs, spec and seed give the same bytes whatever the parallelism and chunking.
func TestDeterministicBytes(t *testing.T) {
	d := t.TempDir()
	base := writeST(t, filepath.Join(d, "base"), safetensors.BF16, llamaHF(5, 3, 32, 64, 32))
	a := writeST(t, filepath.Join(d, "a"), safetensors.BF16, llamaHF(6, 3, 32, 64, 32))
	b := writeST(t, filepath.Join(d, "b"), safetensors.BF16, llamaHF(7, 3, 32, 64, 32))
	for _, method := range []string{"dare_ties", "ties", "breadcrumbs_ties", "slerp", "model_stock"} {
		spec := Spec{Method: method, Base: 0, Seed: 1234}
		inputs := []string{base, a, b}
		switch method {
		case "slerp":
			spec.Global = map[string]Param{"t": {Anchors: []float64{0.2, 0.8}}}
			inputs = []string{a, b}
		case "model_stock":
		default:
			spec.PerModel = []map[string]Param{nil, {"weight": Const(0.6), "density": Const(0.4)}, {"weight": Const(0.5), "density": Const(0.7)}}
		}
		var first []byte
		for i, o := range []Options{{Parallelism: 1}, {Parallelism: 2, ChunkElements: 256}, {Parallelism: 3, ChunkElements: 1000}} {
			out := filepath.Join(d, method+string(rune('a'+i)))
			res := mustMerge(t, inputs, out, spec, o)
			data, err := os.ReadFile(filepath.Join(out, safetensors.SingleName))
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = data
				continue
			}
			if string(data) != string(first) {
				t.Fatalf("%s: output differs with options %+v", method, o)
			}
			_ = res
		}
	}
}

func TestShardedOutputRoundTrip(t *testing.T) {
	d := t.TempDir()
	ta, tb := llamaHF(1, 3, 16, 32, 16), llamaHF(2, 3, 16, 32, 16)
	a := writeST(t, filepath.Join(d, "a"), safetensors.F16, ta)
	b := writeST(t, filepath.Join(d, "b"), safetensors.F16, tb)
	out := filepath.Join(d, "sharded")
	var calls []int
	res := mustMerge(t, []string{a, b}, out, Spec{Method: "linear", Base: -1}, Options{MaxShardBytes: 2000,
		Progress: func(done, total int) { calls = append(calls, done) }})
	if len(calls) != len(ta) || calls[len(calls)-1] != len(ta) {
		t.Fatalf("progress calls %v", calls)
	}
	if _, err := os.Stat(filepath.Join(out, safetensors.IndexName)); err != nil {
		t.Fatal("no index written")
	}
	if len(res.Files) < 4 {
		t.Fatalf("expected several shards, got files %v", res.Files)
	}
	got := readAll(t, out) // reads through the index
	for i, x := range ta {
		want := make([]float64, len(x.data))
		for k := range want {
			ha := float64(halfOf(x.data[k]))
			hb := float64(halfOf(tb[i].data[k]))
			want[k] = float64(halfOf(float32((ha + hb) / 2)))
		}
		assertClose(t, x.name, got[x.name], want, 1e-7)
	}
	// a rerun into the same folder gives the same manifest hash
	res2 := mustMerge(t, []string{a, b}, out, Spec{Method: "linear", Base: -1}, Options{MaxShardBytes: 2000})
	if res2.SHA256 != res.SHA256 {
		t.Fatal("rerun gave a different hash")
	}
}

// halfOf rounds through F16 like the writer does.
func halfOf(v float32) float32 {
	var b [2]byte
	safetensors.Encode(safetensors.F16, []float32{v}, b[:])
	var out [1]float32
	safetensors.Decode(safetensors.F16, b[:], out[:])
	return out[0]
}

// The tensor cache changes speed, never bytes.
func TestCacheDoesNotChangeOutput(t *testing.T) {
	d := t.TempDir()
	base := writeST(t, filepath.Join(d, "base"), safetensors.F16, llamaHF(5, 2, 32, 64, 32))
	a := writeST(t, filepath.Join(d, "a"), safetensors.F16, llamaHF(6, 2, 32, 64, 32))
	b := writeST(t, filepath.Join(d, "b"), safetensors.F16, llamaHF(7, 2, 32, 64, 32))
	for _, c := range []struct {
		spec   Spec
		inputs []string
	}{
		{Spec{Method: "ties", Base: 0, PerModel: []map[string]Param{nil, {"density": Const(0.3)}, {"density": Const(0.6)}}}, []string{base, a, b}},
		{Spec{Method: "slerp", Base: 0, Global: map[string]Param{"t": Const(0.4)}}, []string{a, b}},
	} {
		var sums []string
		for _, cb := range []int64{0, 1 << 20, 5000} { // never, everything, only small tensors
			out := filepath.Join(d, c.spec.Method+strconv.FormatInt(cb, 10)+".safetensors")
			sums = append(sums, mustMerge(t, c.inputs, out, c.spec, Options{CacheBytes: cb, ChunkElements: 512}).SHA256)
		}
		if sums[0] != sums[1] || sums[0] != sums[2] {
			t.Fatalf("%s: cache changed the output: %v", c.spec.Method, sums)
		}
	}
}
