package diversity

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// tensor is one tensor of a test GGUF: F32/F16 from vals, or Q8_0 from raw blocks.
type tensor struct {
	name  string
	shape []int64
	typ   gguf.Type
	vals  []float32
	raw   []byte
}

func writeGGUF(t *testing.T, path string, ts []tensor) string {
	t.Helper()
	infos := make([]gguf.TensorInfo, len(ts))
	for i, x := range ts {
		infos[i] = gguf.TensorInfo{Name: x.name, Shape: x.shape, Type: x.typ}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := gguf.NewWriter(f, []gguf.KV{{Key: "general.architecture", Value: "llama"}}, infos)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		data := x.raw
		switch x.typ {
		case gguf.TypeF32:
			data = make([]byte, 4*len(x.vals))
			if err := safetensors.Encode(safetensors.F32, x.vals, data); err != nil {
				t.Fatal(err)
			}
		case gguf.TypeF16:
			data = make([]byte, 2*len(x.vals))
			if err := safetensors.Encode(safetensors.F16, x.vals, data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteTensor(x.name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func f32(name string, vals ...float32) tensor {
	return tensor{name: name, shape: []int64{int64(len(vals))}, typ: gguf.TypeF32, vals: vals}
}

// q8 is one Q8_0 block (32 elements): an F16 scale, then 32 int8 quants.
func q8(name string, scale uint16, q map[int]int8) tensor {
	raw := make([]byte, 34)
	binary.LittleEndian.PutUint16(raw, scale)
	for i, v := range q {
		raw[2+i] = byte(v)
	}
	return tensor{name: name, shape: []int64{32}, typ: gguf.TypeQ8_0, raw: raw}
}

func zeros(n int) []float32 { return make([]float32, n) }

func with(n int, at map[int]float32) []float32 {
	v := zeros(n)
	for i, x := range at {
		v[i] = x
	}
	return v
}

// Three models over an ancestor, in three dtypes; the task vectors are
// (over t1 | t2 | t3, zeros left out)
//
//	m0 = (1,0,0,0 | 0,0 | 0…0)          F32
//	m1 = (1,1,0,0 | 0,0 | 0…0,−1)       t1 F16, t3 F16
//	m2 = (0,0,0,0 | 0,2 | 1,0…0,1)      t3 Q8_0 (scale 0.5, quants 2)
//
// so |m0| = 1, |m1| = √3, |m2| = √6; cos01 = 1/√3, cos02 = 0,
// cos12 = −1/√18; distances 1 − cos.
func TestTaskVectorsByHand(t *testing.T) {
	dir := t.TempDir()
	anc := writeGGUF(t, filepath.Join(dir, "anc.gguf"), []tensor{f32("t1", 0, 0, 0, 0), f32("t2", 1, 1), f32("t3", zeros(32)...)})
	m0 := writeGGUF(t, filepath.Join(dir, "m0.gguf"), []tensor{f32("t1", 1, 0, 0, 0), f32("t2", 1, 1), f32("t3", zeros(32)...)})
	f16 := func(x tensor) tensor { x.typ = gguf.TypeF16; return x }
	m1 := writeGGUF(t, filepath.Join(dir, "m1.gguf"), []tensor{f16(f32("t1", 1, 1, 0, 0)), f32("t2", 1, 1), f16(f32("t3", with(32, map[int]float32{31: -1})...))})
	m2 := writeGGUF(t, filepath.Join(dir, "m2.gguf"), []tensor{f32("t1", 0, 0, 0, 0), f32("t2", 1, 3), q8("t3", 0x3800, map[int]int8{0: 2, 31: 2})})

	var progress []int
	w, err := TaskVectors(context.Background(), anc, []string{m0, m1, m2}, Options{Progress: func(d, n int) { progress = append(progress, d*10+n) }})
	if err != nil {
		t.Fatal(err)
	}
	if w.Models != 3 || w.Tensors != 3 || w.Elements != 38 {
		t.Fatalf("models/tensors/elements = %d/%d/%d, want 3/3/38", w.Models, w.Tensors, w.Elements)
	}
	if len(progress) != 3 || progress[2] != 33 {
		t.Fatalf("progress calls %v", progress)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %.15f, want %.15f", what, got, want)
		}
	}
	near("|m0|", w.Norms[0], 1)
	near("|m1|", w.Norms[1], math.Sqrt(3))
	near("|m2|", w.Norms[2], math.Sqrt(6))
	c01, c02, c12 := 1/math.Sqrt(3), 0.0, -1/math.Sqrt(18)
	near("cos01", w.Cosine[0][1], c01)
	near("cos10", w.Cosine[1][0], c01)
	near("cos02", w.Cosine[0][2], c02)
	near("cos12", w.Cosine[1][2], c12)
	for i := range 3 {
		near("cos ii", w.Cosine[i][i], 1)
	}
	near("mean distance", w.MeanDistance, ((1-c01)+(1-c02)+(1-c12))/3)
	near("min distance", w.MinDistance, 1-c01)
	near("max distance", w.MaxDistance, 1-c12)
}

// Chunks smaller than a tensor give the plain whole-vector result, and the
// same result on every run.
func TestTaskVectorsChunkedMatchesDirect(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1000, 300, 7}
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	var flat [][]float64 // ancestor first
	var paths []string
	for m := range 5 {
		var ts []tensor
		var all []float64
		for k, n := range sizes {
			v := rnd(n)
			ts = append(ts, f32(string(rune('a'+k)), v...))
			for _, x := range v {
				all = append(all, float64(x))
			}
		}
		flat = append(flat, all)
		paths = append(paths, writeGGUF(t, filepath.Join(dir, string(rune('0'+m))+".gguf"), ts))
	}
	d := make([][]float64, 4)
	for i := range d {
		d[i] = make([]float64, len(flat[0]))
		for k := range d[i] {
			d[i][k] = float64(float32(flat[i+1][k]) - float32(flat[0][k]))
		}
	}
	dotv := func(a, b []float64) float64 {
		s := 0.0
		for k := range a {
			s += a[k] * b[k]
		}
		return s
	}
	first, err := TaskVectors(context.Background(), paths[0], paths[1:], Options{ChunkElements: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		for j := range 4 {
			want := dotv(d[i], d[j]) / math.Sqrt(dotv(d[i], d[i])*dotv(d[j], d[j]))
			if math.Abs(first.Cosine[i][j]-want) > 1e-9 {
				t.Errorf("cos[%d][%d] = %v, want %v", i, j, first.Cosine[i][j], want)
			}
		}
	}
	again, err := TaskVectors(context.Background(), paths[0], paths[1:], Options{ChunkElements: 100})
	if err != nil {
		t.Fatal(err)
	}
	if again.MeanDistance != first.MeanDistance || again.Cosine[1][3] != first.Cosine[1][3] {
		t.Fatalf("not deterministic: %v then %v", first.MeanDistance, again.MeanDistance)
	}
}

// Models equal to the ancestor have zero task vectors: the same as each other, orthogonal to the rest.
func TestZeroTaskVectors(t *testing.T) {
	dir := t.TempDir()
	anc := writeGGUF(t, filepath.Join(dir, "anc.gguf"), []tensor{f32("t", 1, 2)})
	same := writeGGUF(t, filepath.Join(dir, "same.gguf"), []tensor{f32("t", 1, 2)})
	other := writeGGUF(t, filepath.Join(dir, "other.gguf"), []tensor{f32("t", 2, 2)})
	w, err := TaskVectors(context.Background(), anc, []string{anc, same, other}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.Cosine[0][1] != 1 || w.Cosine[0][2] != 0 || w.Cosine[1][2] != 0 {
		t.Fatalf("cosines %v", w.Cosine)
	}
	if want := (0.0 + 1 + 1) / 3; math.Abs(w.MeanDistance-want) > 1e-15 {
		t.Fatalf("mean distance %v, want %v", w.MeanDistance, want)
	}
}

func TestTaskVectorsBadInput(t *testing.T) {
	dir := t.TempDir()
	anc := writeGGUF(t, filepath.Join(dir, "anc.gguf"), []tensor{f32("t", 1, 2), f32("u", 1)})
	ok := writeGGUF(t, filepath.Join(dir, "ok.gguf"), []tensor{f32("t", 1, 3), f32("u", 1)})
	shape := writeGGUF(t, filepath.Join(dir, "shape.gguf"), []tensor{f32("t", 1, 2, 3), f32("u", 1)})
	missing := writeGGUF(t, filepath.Join(dir, "missing.gguf"), []tensor{f32("t", 1, 2)})
	extra := writeGGUF(t, filepath.Join(dir, "extra.gguf"), []tensor{f32("t", 1, 2), f32("u", 1), f32("v", 1)})
	nan := writeGGUF(t, filepath.Join(dir, "nan.gguf"), []tensor{f32("t", 1, float32(math.NaN())), f32("u", 1)})
	for _, c := range []struct {
		name   string
		models []string
		want   []string
	}{
		{"one model", []string{ok}, []string{"at least 2"}},
		{"shape", []string{ok, shape}, []string{"models[1]", "shape.gguf", `"t"`, "shape [3]"}},
		{"missing", []string{missing, ok}, []string{"models[0]", "missing.gguf", `no tensor "u"`}},
		{"extra", []string{ok, extra}, []string{"models[1]", `"v" is not in the ancestor`}},
		{"nan", []string{ok, nan}, []string{"models[1]", "nan.gguf", "non-finite"}},
		{"no file", []string{ok, filepath.Join(dir, "nope.gguf")}, []string{"models[1]", "nope.gguf"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := TaskVectors(context.Background(), anc, c.models, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TaskVectors(ctx, anc, []string{ok, ok}, Options{}); err == nil {
		t.Fatal("a cancelled context must stop the measurement")
	}
}

func TestFitnessSpread(t *testing.T) {
	f, err := FitnessSpread([]float64{0.2, 0.4, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	// mean 0.5; deviations −0.3, −0.1, 0.4; variance (0.09+0.01+0.16)/3.
	if f.N != 3 || math.Abs(f.Mean-0.5) > 1e-15 || f.Min != 0.2 || f.Max != 0.9 || math.Abs(f.Std-math.Sqrt(0.26/3)) > 1e-15 {
		t.Fatalf("%+v", f)
	}
	if _, err := FitnessSpread(nil); err == nil {
		t.Fatal("empty scores accepted")
	}
	if _, err := FitnessSpread([]float64{1, math.Inf(1)}); err == nil || !strings.Contains(err.Error(), "scores[1]") {
		t.Fatalf("error %v", err)
	}
}
