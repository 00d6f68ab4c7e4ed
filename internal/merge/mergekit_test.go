package merge

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/safetensors"
)

func TestParseMergekitTies(t *testing.T) {
	y := `
models:
  - model: base
  - model: a
    parameters:
      density: [0.2, 0.5, 0.8]
      weight:
        - filter: mlp
          value: 0.3
        - value: [0.7, 0.6]
  - model: b
    parameters:
      weight: 0.5
merge_method: ties
base_model: base
parameters:
  normalize: true
  int8_mask: true
  density: 0.4
dtype: bfloat16
seed: 7
`
	inputs, spec, err := ParseMergekit([]byte(y), "/m")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inputs, []string{"/m/base", "/m/a", "/m/b"}) {
		t.Fatalf("inputs %v", inputs)
	}
	want := Spec{Method: "ties", Base: 0, Seed: 7, OutType: "bf16",
		Global: map[string]Param{"normalize": Const(1)},
		PerModel: []map[string]Param{
			{},
			{"density": {Anchors: []float64{0.2, 0.5, 0.8}}, "weight": {Anchors: []float64{0.7, 0.6}, ByClass: map[string][]float64{"mlp": {0.3}}}},
			{"weight": Const(0.5), "density": Const(0.4)},
		}}
	if !reflect.DeepEqual(spec, want) {
		t.Fatalf("spec\n%+v\nwant\n%+v", spec, want)
	}
}

func TestParseMergekitSlerpSlices(t *testing.T) {
	y := `
slices:
  - sources:
      - model: A
        layer_range: [0, 3]
      - model: B
        layer_range: [0, 3]
merge_method: slerp
base_model: A
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: float16
`
	inputs, spec, err := ParseMergekit([]byte(y), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) != 2 || spec.Base != 0 || len(spec.Slices) != 1 || len(spec.Slices[0].Sources) != 2 {
		t.Fatalf("inputs %v spec %+v", inputs, spec)
	}
	if got := spec.Global["t"].ByClass["attention"]; len(got) != 5 {
		t.Fatalf("t by class %v", spec.Global["t"])
	}
}

func TestParseMergekitErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"merge_method: lerp\nmodels: [{model: a}]", "lerp"},
		{"merge_method: linear\nmodels: [{model: a, parameters: {weight: x}}]", "models[0].parameters.weight"},
		{"merge_method: linear\nmodels: [{model: a, parameters: {weight: [{filter: qkv, value: 1}]}}]", "qkv"},
		{"merge_method: ties\nbase_model: b\nmodels: [{model: a, parameters: {density: 2}}]", "density"},
		{"merge_method: linear\nmodels: [{model: a}]\nfrobnicate: 1", "frobnicate"},
		{"merge_method: slerp\nmodels: [{model: a}, {model: b}]\nparameters: {t: 0.5, gamma: 1}", "global.gamma"},
		{"merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0]}]}]", "layer_range"},
		{"merge_method: linear\nmodels: [{model: a}]\ntokenizer_source: union", "tokenizer_source"},
	} {
		_, _, err := ParseMergekit([]byte(c.yaml), "")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: want error naming %q, got %v", c.yaml, c.want, err)
		}
	}
}

// A mergekit frankenmerge runs end to end from its YAML (as `starter merge` runs it).
func TestMergekitFrankenmergeEndToEnd(t *testing.T) {
	d := t.TempDir()
	writeST(t, filepath.Join(d, "a"), safetensors.F16, llamaHF(1, 3, 8, 16, 8))
	writeST(t, filepath.Join(d, "b"), safetensors.F16, llamaHF(2, 3, 8, 16, 8))
	cfg := filepath.Join(d, "franken.yaml")
	os.WriteFile(cfg, []byte(`
slices:
  - sources:
      - model: a
        layer_range: [0, 2]
  - sources:
      - model: b
        layer_range: [1, 3]
merge_method: passthrough
dtype: float16
`), 0o644)
	inputs, spec, err := LoadMergekit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(d, "child")
	res, err := Merge(context.Background(), inputs, out, spec, Options{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.SHA256) != 64 {
		t.Fatalf("no sha256 in the result: %+v", res)
	}
	got := readAll(t, out)
	src := readAll(t, filepath.Join(d, "b"))
	if !reflect.DeepEqual(got["model.layers.3.mlp.up_proj.weight"], src["model.layers.2.mlp.up_proj.weight"]) {
		t.Fatal("layer 3 of the child is not layer 2 of b")
	}
	if _, ok := got["model.layers.4.mlp.up_proj.weight"]; ok {
		t.Fatal("child has 5 layers")
	}
	cfgJSON, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if !strings.Contains(string(cfgJSON), `"num_hidden_layers": 4`) {
		t.Fatalf("config.json layer count not updated: %s", cfgJSON)
	}
}

// mergekit's classic slerp config with multi-source slices merges layer by layer.
func TestMergekitSlerpSlicesRun(t *testing.T) {
	d := t.TempDir()
	writeST(t, filepath.Join(d, "A"), safetensors.F32, llamaHF(1, 3, 8, 16, 8))
	writeST(t, filepath.Join(d, "B"), safetensors.F32, llamaHF(2, 3, 8, 16, 8))
	y := `
slices:
  - sources:
      - model: A
        layer_range: [0, 3]
      - model: B
        layer_range: [0, 3]
merge_method: slerp
base_model: A
parameters:
  t:
    - filter: self_attn
      value: [0, 1]
    - value: 1
dtype: float32
`
	inputs, spec, err := ParseMergekit([]byte(y), d)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(d, "child")
	mustMerge(t, inputs, out, spec, Options{})
	got, a, b := readAll(t, out), readAll(t, inputs[0]), readAll(t, inputs[1])
	same := func(x, y []float32) bool {
		for i := range x {
			if !near(float64(x[i]), float64(y[i]), 1e-6) {
				return false
			}
		}
		return len(x) == len(y)
	}
	if !same(got["model.layers.0.self_attn.q_proj.weight"], a["model.layers.0.self_attn.q_proj.weight"]) {
		t.Error("layer 0 attention (t=0) is not A")
	}
	if !same(got["model.layers.2.self_attn.q_proj.weight"], b["model.layers.2.self_attn.q_proj.weight"]) {
		t.Error("layer 2 attention (t=1) is not B")
	}
	if !same(got["model.layers.1.mlp.up_proj.weight"], b["model.layers.1.mlp.up_proj.weight"]) {
		t.Error("mlp (t=1) is not B")
	}
	if same(got["model.layers.1.self_attn.q_proj.weight"], a["model.layers.1.self_attn.q_proj.weight"]) {
		t.Error("layer 1 attention (t=0.5) equals A")
	}
}
