package merge

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/safetensors"
)

// one-tensor models make hand-computed cases readable.
func vecModel(t *testing.T, dir string, v ...float32) string {
	return writeST(t, dir, safetensors.F32, []tensorData{{"w", []int64{int64(len(v))}, v}})
}

func merged(t *testing.T, spec Spec, inputs ...string) []float32 {
	t.Helper()
	out := filepath.Join(t.TempDir(), "child.safetensors")
	if spec.OutType == "" {
		spec.OutType = "f32"
	}
	mustMerge(t, inputs, out, spec, Options{})
	return readAll(t, out)["w"]
}

func TestLinear(t *testing.T) {
	d := t.TempDir()
	a := vecModel(t, filepath.Join(d, "a"), 1, 2)
	b := vecModel(t, filepath.Join(d, "b"), 3, 6)
	got := merged(t, Spec{Method: "linear", Base: -1, PerModel: []map[string]Param{{"weight": Const(1)}, {"weight": Const(3)}}}, a, b)
	assertClose(t, "normalised", got, []float64{2.5, 5}, 1e-6)
	got = merged(t, Spec{Method: "linear", Base: -1, Global: map[string]Param{"normalize": Const(0)},
		PerModel: []map[string]Param{{"weight": Const(1)}, {"weight": Const(3)}}}, a, b)
	assertClose(t, "raw", got, []float64{10, 20}, 1e-6)
}

func TestSlerp(t *testing.T) {
	d := t.TempDir()
	a := vecModel(t, filepath.Join(d, "a"), 1, 0)
	b := vecModel(t, filepath.Join(d, "b"), 0, 1)
	got := merged(t, Spec{Method: "slerp", Base: 0, Global: map[string]Param{"t": Const(0.5)}}, a, b)
	assertClose(t, "orthogonal", got, []float64{math.Sqrt2 / 2, math.Sqrt2 / 2}, 1e-6)
	// base 1 means t runs from b to a
	got = merged(t, Spec{Method: "slerp", Base: 1, Global: map[string]Param{"t": Const(1.0 / 3)}}, a, b)
	assertClose(t, "reversed", got, []float64{0.5, math.Sqrt(3) / 2}, 1e-6)
	// nearly colinear: linear fallback
	c := vecModel(t, filepath.Join(d, "c"), 1, 1)
	e := vecModel(t, filepath.Join(d, "e"), 2, 2)
	got = merged(t, Spec{Method: "slerp", Base: 0, Global: map[string]Param{"t": Const(0.25)}}, c, e)
	assertClose(t, "colinear", got, []float64{1.25, 1.25}, 1e-6)
}

func TestTaskArithmetic(t *testing.T) {
	d := t.TempDir()
	base := vecModel(t, filepath.Join(d, "base"), 1, 1, 1)
	m1 := vecModel(t, filepath.Join(d, "m1"), 2, 0, 1)
	m2 := vecModel(t, filepath.Join(d, "m2"), 1, 3, 1)
	spec := Spec{Method: "task_arithmetic", Base: 0, PerModel: []map[string]Param{nil, {"weight": Const(1)}, {"weight": Const(0.5)}}}
	assertClose(t, "λ=1", merged(t, spec, base, m1, m2), []float64{2, 1, 1}, 1e-6)
	spec.Global = map[string]Param{"lambda": Const(2)}
	assertClose(t, "λ=2", merged(t, spec, base, m1, m2), []float64{3, 1, 1}, 1e-6)
}

func TestTies(t *testing.T) {
	d := t.TempDir()
	base := vecModel(t, filepath.Join(d, "base"), 0, 0, 0, 0)
	m1 := vecModel(t, filepath.Join(d, "m1"), 3, -1, 0.5, -2)
	m2 := vecModel(t, filepath.Join(d, "m2"), -1, 2, 0.4, -3)
	spec := Spec{Method: "ties", Base: 0, PerModel: []map[string]Param{nil,
		{"weight": Const(1), "density": Const(0.5)}, {"weight": Const(1), "density": Const(0.5)}}}
	// trimmed: m1 → [3 0 0 -2], m2 → [0 2 0 -3]; signs elected + + + −; disjoint mean.
	assertClose(t, "ties", merged(t, spec, base, m1, m2), []float64{3, 2, 0, -2.5}, 1e-6)
	// without trimming the sign vote of element 0 is 3−1 > 0: only m1 counts.
	spec.PerModel[1]["density"], spec.PerModel[2]["density"] = Const(1), Const(1)
	assertClose(t, "ties d=1", merged(t, spec, base, m1, m2), []float64{3, 2, 0.45, -2.5}, 1e-6)
}

func TestBreadcrumbs(t *testing.T) {
	d := t.TempDir()
	base := vecModel(t, filepath.Join(d, "base"), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	m1 := vecModel(t, filepath.Join(d, "m1"), 1, -2, 3, -4, 5, -6, 7, -8, 9, -10)
	spec := Spec{Method: "breadcrumbs", Base: 0, PerModel: []map[string]Param{nil,
		{"weight": Const(1), "density": Const(0.5), "gamma": Const(0.2)}}}
	// 10 values: drop the 2 largest (|10|, 9) and the 3 smallest; keep 4..8.
	assertClose(t, "breadcrumbs", merged(t, spec, base, m1), []float64{0, 0, 0, -4, 5, -6, 7, -8, 0, 0}, 1e-6)
}

func TestModelStock(t *testing.T) {
	d := t.TempDir()
	// two rows of 2: row 0 task vectors at 60° (cos ½ → t = 2/3), row 1 orthogonal (t = 0).
	base := writeST(t, filepath.Join(d, "base"), safetensors.F32, []tensorData{{"w", []int64{2, 2}, []float32{0, 0, 1, 1}}})
	m1 := writeST(t, filepath.Join(d, "m1"), safetensors.F32, []tensorData{{"w", []int64{2, 2}, []float32{1, 0, 2, 1}}})
	m2 := writeST(t, filepath.Join(d, "m2"), safetensors.F32, []tensorData{{"w", []int64{2, 2}, []float32{0.5, float32(math.Sqrt(3) / 2), 1, 2}}})
	got := merged(t, Spec{Method: "model_stock", Base: 0}, base, m1, m2)
	assertClose(t, "model_stock", got, []float64{0.5, math.Sqrt(3) / 6, 1, 1}, 1e-6)
}

func TestDareMaskDensityAndSeed(t *testing.T) {
	d := t.TempDir()
	n := 20000
	zeros, ones := make([]float32, n), make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	base := vecModel(t, filepath.Join(d, "base"), zeros...)
	m1 := vecModel(t, filepath.Join(d, "m1"), ones...)
	spec := Spec{Method: "dare_linear", Base: 0, Seed: 42, PerModel: []map[string]Param{nil, {"weight": Const(1), "density": Const(0.25)}}}
	got := merged(t, spec, base, m1)
	kept := 0
	for _, v := range got {
		switch v {
		case 0:
		case 4: // rescaled by 1/density
			kept++
		default:
			t.Fatalf("unexpected value %v", v)
		}
	}
	if frac := float64(kept) / float64(n); math.Abs(frac-0.25) > 0.02 {
		t.Fatalf("kept fraction %.3f, want about 0.25", frac)
	}
	spec.Seed = 43
	other := merged(t, spec, base, m1)
	same := 0
	for i := range got {
		if got[i] == other[i] {
			same++
		}
	}
	if same == n {
		t.Fatal("a different seed gave the same mask")
	}
}

func TestProperties(t *testing.T) {
	d := t.TempDir()
	ts1, ts2, ts0 := llamaHF(1, 3, 16, 32, 16), llamaHF(2, 3, 16, 32, 16), llamaHF(3, 3, 16, 32, 16)
	a := writeST(t, filepath.Join(d, "a"), safetensors.F16, ts1)
	b := writeST(t, filepath.Join(d, "b"), safetensors.F16, ts2)
	base := writeST(t, filepath.Join(d, "base"), safetensors.F16, ts0)
	fileOf := func(dir string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, safetensors.SingleName))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	run := func(name string, spec Spec, inputs ...string) []byte {
		out := filepath.Join(d, name)
		mustMerge(t, inputs, out, spec, Options{})
		return fileOf(out)
	}
	w := func(vs ...float64) []map[string]Param {
		out := make([]map[string]Param, len(vs))
		for i, v := range vs {
			out[i] = map[string]Param{"weight": Const(v)}
		}
		return out
	}
	if !bytes.Equal(run("lin1", Spec{Method: "linear", Base: -1, PerModel: w(0, 1)}, a, b), fileOf(b)) {
		t.Error("linear with weight 1 on b is not b")
	}
	for _, tc := range []struct {
		t    float64
		want string
	}{{0, a}, {1, b}} {
		if !bytes.Equal(run("slerp", Spec{Method: "slerp", Base: 0, Global: map[string]Param{"t": Const(tc.t)}}, a, b), fileOf(tc.want)) {
			t.Errorf("slerp t=%v is not the parent", tc.t)
		}
	}
	ta := run("ta", Spec{Method: "task_arithmetic", Base: 0, PerModel: w(0, 1)}, base, a)
	ties := run("ties1", Spec{Method: "ties", Base: 0, PerModel: []map[string]Param{nil, {"weight": Const(1), "density": Const(1)}}}, base, a)
	if !bytes.Equal(ta, ties) {
		t.Error("ties with density 1 and one model differs from task arithmetic")
	}
	ta2 := run("ta2", Spec{Method: "task_arithmetic", Base: 0, PerModel: w(0, 0.7, 0.4)}, base, a, b)
	dare := run("dare1", Spec{Method: "dare_linear", Base: 0, Seed: 9, PerModel: []map[string]Param{nil,
		{"weight": Const(0.7), "density": Const(1)}, {"weight": Const(0.4), "density": Const(1)}}}, base, a, b)
	if !bytes.Equal(ta2, dare) {
		t.Error("dare_linear with density 1 differs from task arithmetic")
	}
}
