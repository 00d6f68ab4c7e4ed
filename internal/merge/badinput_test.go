package merge

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/safetensors"
)

func expectErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not name %q", err, w)
		}
	}
}

// onlyNames lists the entries of dir (temp files included).
func onlyNames(t *testing.T, dir string) []string {
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestBadInputs(t *testing.T) {
	d := t.TempDir()
	good := llamaHF(1, 2, 8, 16, 8)
	a := writeST(t, filepath.Join(d, "a"), safetensors.F16, good)

	renamed := llamaHF(2, 2, 8, 16, 8)
	renamed[3].name = "model.layers.0.self_attn.k_proj_x.weight"
	bName := writeST(t, filepath.Join(d, "bname"), safetensors.F16, renamed)

	reshaped := llamaHF(2, 2, 8, 16, 8)
	reshaped[4].shape = []int64{8, 16} // up_proj transposed: same elements, other shape
	bShape := writeST(t, filepath.Join(d, "bshape"), safetensors.F16, reshaped)

	vocab := llamaHF(2, 2, 8, 16, 9)
	bVocab := writeST(t, filepath.Join(d, "bvocab"), safetensors.F16, vocab)

	nan := llamaHF(2, 2, 8, 16, 8)
	nan[5].data[7] = float32(math.Inf(1))
	bNaN := writeST(t, filepath.Join(d, "bnan"), safetensors.F32, nan)

	bTrunc := writeST(t, filepath.Join(d, "btrunc"), safetensors.F16, llamaHF(2, 2, 8, 16, 8))
	p := filepath.Join(bTrunc, safetensors.SingleName)
	data, _ := os.ReadFile(p)
	os.WriteFile(p, data[:len(data)-10], 0o644)

	outDir := filepath.Join(d, "out")
	os.MkdirAll(outDir, 0o755)
	lin := Spec{Method: "linear", Base: -1}
	cases := []struct {
		name   string
		inputs []string
		spec   Spec
		out    string
		want   []string
	}{
		{"tensor names", []string{a, bName}, lin, "o1", []string{"model.layers.0.self_attn.k_proj.weight", bName}},
		{"tensor shapes", []string{a, bShape}, lin, "o2", []string{"model.layers.0.mlp.up_proj.weight", "shape"}},
		{"vocabulary", []string{a, bVocab}, lin, "o3", []string{"model.embed_tokens.weight", "[9 8]"}},
		{"non-finite", []string{a, bNaN}, lin, "o4", []string{"model.layers.0.mlp.down_proj.weight", "non-finite", "element 7"}},
		{"truncated", []string{a, bTrunc}, lin, "o5", []string{"lm_head.weight", "truncated"}},
		{"unknown method", []string{a, a}, Spec{Method: "frobnicate", Base: -1}, "o6", []string{"frobnicate"}},
		{"density range", []string{a, a}, Spec{Method: "ties", Base: 0, PerModel: []map[string]Param{nil, {"density": Const(1.5)}}}, "o7", []string{"per_model[1].density", "1.5"}},
		{"unknown param", []string{a, a}, Spec{Method: "slerp", Base: 0, Global: map[string]Param{"t": Const(0.5), "tau": Const(1)}}, "o8", []string{"global.tau"}},
		{"missing t", []string{a, a}, Spec{Method: "slerp", Base: 0}, "o9", []string{"global.t"}},
		{"bad class", []string{a, a}, Spec{Method: "linear", Base: -1, PerModel: []map[string]Param{{"weight": {ByClass: map[string][]float64{"mpl": {1}}}}}}, "o10", []string{"mpl"}},
		{"base needed", []string{a, a}, Spec{Method: "ties", Base: -1}, "o11", []string{"base"}},
		{"slerp count", []string{a, a, a}, Spec{Method: "slerp", Base: 0, Global: map[string]Param{"t": Const(0.5)}}, "o12", []string{"exactly 2"}},
		{"t range", []string{a, a}, Spec{Method: "slerp", Base: 0, Global: map[string]Param{"t": {Anchors: []float64{0, 1.2}}}}, "o13", []string{"global.t", "anchors[1]"}},
		{"out type", []string{a, a}, Spec{Method: "linear", Base: -1, OutType: "q3"}, "o14", []string{"out_type"}},
		{"slice range", []string{a, a}, Spec{Method: "passthrough", Base: -1, Slices: []Slice{{Model: 1, From: 0, To: 5}}}, "o15", []string{"[0, 5)", "2 layers"}},
		{"format", []string{a, a}, lin, "o16.gguf", []string{"same format"}},
	}
	for _, c := range cases {
		out := filepath.Join(outDir, c.out)
		_, err := Merge(t.Context(), c.inputs, out, c.spec, Options{Parallelism: 2})
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %q does not name %q", c.name, err, w)
			}
		}
	}
	if names := onlyNames(t, outDir); len(names) != 0 {
		t.Fatalf("failed merges left files behind: %v", names)
	}
}

func TestResultHashMatchesFile(t *testing.T) {
	d := t.TempDir()
	a := writeST(t, filepath.Join(d, "a"), safetensors.F16, llamaHF(1, 2, 8, 16, 8))
	b := writeST(t, filepath.Join(d, "b"), safetensors.F16, llamaHF(2, 2, 8, 16, 8))
	out := filepath.Join(d, "c.safetensors")
	res := mustMerge(t, []string{a, b}, out, Spec{Method: "slerp", Base: 0, Global: map[string]Param{"t": Const(0.3)}}, Options{})
	data, _ := os.ReadFile(out)
	sum := sha256.Sum256(data)
	if res.SHA256 != hex.EncodeToString(sum[:]) || res.Bytes != int64(len(data)) {
		t.Fatalf("result %+v does not describe the file (%d bytes)", res, len(data))
	}
	if names := onlyNames(t, d); len(names) != 3 {
		t.Fatalf("temp files left: %v", names)
	}
}

func TestCancel(t *testing.T) {
	d := t.TempDir()
	a := writeST(t, filepath.Join(d, "a"), safetensors.F16, llamaHF(1, 2, 8, 16, 8))
	ctx, cancel := contextWithCancel(t)
	cancel()
	out := filepath.Join(d, "o.safetensors")
	if _, err := Merge(ctx, []string{a, a}, out, Spec{Method: "linear", Base: -1}, Options{}); err == nil {
		t.Fatal("cancelled merge succeeded")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("output exists after cancel")
	}
	if names := onlyNames(t, d); len(names) != 1 {
		t.Fatalf("temp files left: %v", names)
	}
}
