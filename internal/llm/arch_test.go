package llm

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
)

// archConfigs are one config per architecture and RoPE variant (the llama.cpp comparison of each lives in
// internal/llm/refcheck).
func archConfigs() map[string]Config {
	out := map[string]Config{}
	add := func(name string, f func(*Config)) {
		c := tinyCfg
		f(&c)
		out[name] = c
	}
	add("rope_freqs", func(c *Config) { c.RopeFreqs = true })
	add("linear", func(c *Config) { c.RopeScale = 4 })
	add("swa", func(c *Config) { c.SlidingWindow = 32 })
	add("qwen2", func(c *Config) { c.Arch = "qwen2" })
	add("qwen3", func(c *Config) { c.Arch = "qwen3"; c.HeadSize = 32 })
	return out
}

// archModel is a model of cfg with weights far from uniform: nonzero biases, norms around 1, rope_freqs as
// given (nil: spread over 1..8).
func archModel(t testing.TB, cfg Config, typ gguf.Type, freqs []float32) *Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	return hostModel(t, cfg, typ, func(s TensorSpec, i, n int64) float32 {
		switch {
		case s.Name == "rope_freqs.weight":
			if freqs != nil {
				return freqs[i]
			}
			return 1 + 7*float32(i)/float32(n)
		case strings.HasSuffix(s.Name, ".bias"):
			return float32(rng.NormFloat64() * 0.5)
		case len(s.Shape) == 1:
			return 1 + 0.2*float32(rng.NormFloat64())
		default:
			return float32(rng.NormFloat64() * 0.3)
		}
	})
}

func TestArchSaveLoadRoundTrip(t *testing.T) {
	ids := []int32{1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100}
	for name, cfg := range archConfigs() {
		t.Run(name, func(t *testing.T) {
			m := archModel(t, cfg, gguf.TypeF32, nil)
			p := filepath.Join(t.TempDir(), "m.gguf")
			sum, err := m.Save(p)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := Load(p, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer m2.Close()
			if m2.Config != cfg {
				t.Fatalf("config %+v, want %+v", m2.Config, cfg)
			}
			a, err := m.Logits(ids)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := m2.Logits(ids)
			if !reflect.DeepEqual(a, b) {
				t.Fatal("logits differ after a round trip")
			}
			if sum2, err := m2.Save(filepath.Join(t.TempDir(), "m2.gguf")); err != nil || sum2 != sum {
				t.Fatalf("re-save sha %s vs %s (%v)", sum2, sum, err)
			}
			f, file, err := gguf.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			file.Close()
			if a, _ := f.String("general.architecture"); a != cfg.Architecture() {
				t.Fatalf("general.architecture %q", a)
			}
			if _, ok := f.Lookup(cfg.Architecture() + ".embedding_length"); !ok {
				t.Fatalf("no %s.embedding_length", cfg.Architecture())
			}
		})
	}
}

// Neutral settings give exactly the plain model: frequency factors of 1, a linear factor of 1. And the
// variants do change the logits (the comparison with llama.cpp says by the right amount).
func TestRopeVariantsNeutralAndEffective(t *testing.T) {
	ids := []int32{1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33, 33, 63, 10}
	plain := tinyCfg
	want, err := archModel(t, plain, gguf.TypeF32, nil).Logits(ids)
	if err != nil {
		t.Fatal(err)
	}
	ones := plain
	ones.RopeFreqs = true
	factors := make([]float32, plain.HeadDim()/2)
	for i := range factors {
		factors[i] = 1
	}
	got, _ := archModel(t, ones, gguf.TypeF32, factors).Logits(ids)
	if !reflect.DeepEqual(got, want) {
		t.Error("rope_freqs of 1 change the logits")
	}
	lin1 := plain
	lin1.RopeScale = 1
	if got, _ = archModel(t, lin1, gguf.TypeF32, nil).Logits(ids); !reflect.DeepEqual(got, want) {
		t.Error("a linear factor of 1 changes the logits")
	}
	for name, cfg := range map[string]Config{"rope_freqs": ones, "linear": archConfigs()["linear"]} {
		got, _ = archModel(t, cfg, gguf.TypeF32, nil).Logits(ids)
		if reflect.DeepEqual(got, want) {
			t.Errorf("%s does not change the logits", name)
		}
	}
}

func TestArchBadInputs(t *testing.T) {
	save := func(cfg Config) string {
		p := filepath.Join(t.TempDir(), "m.gguf")
		if _, err := archModel(t, cfg, gguf.TypeF32, nil).Save(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfgs := archConfigs()
	llama, qwen2, qwen3, swa := save(tinyCfg), save(cfgs["qwen2"]), save(cfgs["qwen3"]), save(cfgs["swa"])
	addKV := func(key string, v any) func([]gguf.KV, []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
		return func(kvs []gguf.KV, ts []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
			for i := range kvs {
				if kvs[i].Key == key {
					kvs[i].Value = v
					return kvs, ts
				}
			}
			return append(kvs, gguf.KV{Key: key, Value: v}), ts
		}
	}
	dropTensor := func(name string) func([]gguf.KV, []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
		return func(kvs []gguf.KV, ts []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
			var out []gguf.TensorInfo
			for _, ti := range ts {
				if ti.Name != name {
					out = append(out, ti)
				}
			}
			return kvs, out
		}
	}
	addTensor := func(name string, shape ...int64) func([]gguf.KV, []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
		return func(kvs []gguf.KV, ts []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
			return kvs, append(ts, gguf.TensorInfo{Name: name, Shape: shape, Type: gguf.TypeF32})
		}
	}
	cases := []struct {
		name, path, want string
	}{
		{"yarn", writeModified(t, llama, addKV("llama.rope.scaling.type", "yarn")), `llama.rope.scaling.type = "yarn" is not supported`},
		{"longrope", writeModified(t, qwen2, addKV("qwen2.rope.scaling.type", "longrope")), `qwen2.rope.scaling.type = "longrope" is not supported`},
		{"su", writeModified(t, llama, addKV("llama.rope.scaling.type", "su")), `llama.rope.scaling.type = "su"`},
		{"unknown scaling", writeModified(t, llama, addKV("llama.rope.scaling.type", "dynamic")), `llama.rope.scaling.type = "dynamic"`},
		{"scaling not a string", writeModified(t, llama, addKV("llama.rope.scaling.type", uint32(1))), `llama.rope.scaling.type is not a string`},
		{"negative factor", writeModified(t, llama, addKV("llama.rope.scaling.factor", float32(-2))), `llama.rope.scaling.factor must be a non-negative number`},
		{"attn factor", writeModified(t, llama, addKV("llama.rope.scaling.attn_factor", float32(0.5))), `llama.rope.scaling.attn_factor = 0.5`},
		{"partial rope llama", writeModified(t, llama, addKV("llama.rope.dimension_count", uint32(8))), `llama.rope.dimension_count = 8 differs from the head dim 16`},
		{"partial rope qwen2", writeModified(t, qwen2, addKV("qwen2.rope.dimension_count", uint32(8))), `qwen2.rope.dimension_count = 8`},
		{"qwen2 without q bias", writeModified(t, qwen2, dropTensor("blk.1.attn_q.bias")), "tensor blk.1.attn_q.bias is missing"},
		{"qwen2 without v bias", writeModified(t, qwen2, dropTensor("blk.0.attn_v.bias")), "tensor blk.0.attn_v.bias is missing"},
		{"qwen3 without k norm", writeModified(t, qwen3, dropTensor("blk.0.attn_k_norm.weight")), "tensor blk.0.attn_k_norm.weight is missing"},
		{"qwen2 with rope_freqs", writeModified(t, qwen2, addTensor("rope_freqs.weight", 8)), "rope_freqs.weight: architecture qwen2 does not apply"},
		{"rope_freqs shape", writeModified(t, llama, addTensor("rope_freqs.weight", 4)), "rope_freqs.weight has shape [4], want [8]"},
		{"unused tensor", writeModified(t, llama, addTensor("blk.0.attn_q.bias", 64)), "tensor blk.0.attn_q.bias is not part of architecture llama"},
		{"moe", writeModified(t, llama, addKV("llama.expert_count", uint32(8))), "llama.expert_count = 8"},
		{"key length", writeModified(t, qwen3, addKV("qwen3.attention.value_length", uint32(16))), "key_length 32 differs from value_length 16"},
	}
	for _, c := range cases {
		_, err := Load(c.path, Options{Threads: 1})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// A sliding window shorter than the context: the window defaults to it, and a longer one is refused.
	m, err := Load(swa, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Window() != 32 {
		t.Errorf("window %d, want the sliding window 32", m.Window())
	}
	if _, err := m.Logits(make([]int32, 33)); err == nil || !strings.Contains(err.Error(), "window of 32") {
		t.Errorf("33 tokens past a sliding window of 32: %v", err)
	}
	if _, err := Load(swa, Options{Threads: 1, Window: 64}); err == nil || !strings.Contains(err.Error(), "llama.attention.sliding_window = 32") {
		t.Errorf("window beyond the sliding window: %v", err)
	}
}
