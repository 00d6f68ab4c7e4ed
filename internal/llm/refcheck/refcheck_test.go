package refcheck

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
)

// The engine against llama.cpp's outputs kept in testdata (made by `make check-llamacpp`), one subtest per
// architecture, RoPE variant and weight type: the model regenerated from the seed must be the very file
// llama.cpp ran (same sha256), its logits within Tolerance at the kept positions, the argmax equal at every
// position and the greedy continuation (through the KV cache) identical.
func TestMatchesLlamaCppGolden(t *testing.T) {
	g, err := ReadGolden("testdata/llamacpp-golden.json")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]GoldenModel{}
	for _, m := range g.Models {
		byName[m.Name] = m
	}
	for _, v := range Variants() {
		t.Run(v.Name(), func(t *testing.T) {
			want, ok := byName[v.Name()]
			if !ok {
				t.Fatalf("no golden output for %s: run make check-llamacpp", v.Name())
			}
			m, err := Build(v)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			h := sha256.New()
			if _, err := m.WriteTo(h); err != nil {
				t.Fatal(err)
			}
			if sha := hex.EncodeToString(h.Sum(nil)); sha != want.SHA256 {
				t.Fatalf("the regenerated model (sha256 %s) is not the one llama.cpp ran (%s)", sha, want.SHA256)
			}
			logits, greedy, err := Measure(m)
			if err != nil {
				t.Fatal(err)
			}
			var worst float64
			for _, r := range want.Rows {
				for i, id := range r.IDs {
					worst = math.Max(worst, math.Abs(float64(logits[r.Pos][id]-r.Logits[i])))
				}
			}
			if worst > Tolerance(v.Type) {
				t.Errorf("max |logit - llama.cpp| = %.3g, over %.3g", worst, Tolerance(v.Type))
			}
			for p, row := range logits {
				if a := Argmax(row); a != want.Argmax[p] {
					t.Errorf("position %d: argmax %d, llama.cpp %d", p, a, want.Argmax[p])
				}
			}
			if !slices.Equal(greedy, want.Greedy) {
				t.Errorf("greedy %v, llama.cpp %v", greedy, want.Greedy)
			}
			t.Logf("max |logit - llama.cpp| = %.3g at the kept positions", worst)
		})
	}
}

// The check must be able to fail: a model that differs from the golden one in one RoPE setting is caught.
func TestGoldenCatchesAWrongRoPE(t *testing.T) {
	g, err := ReadGolden("testdata/llamacpp-golden.json")
	if err != nil {
		t.Fatal(err)
	}
	v := Shapes()[2] // llama-linear4
	v.Type = gguf.TypeF32
	var want GoldenModel
	for _, m := range g.Models {
		if m.Name == v.Name() {
			want = m
		}
	}
	v.Config.RopeScale = 1 // the scaling ignored, as before issue 10
	m, err := Build(v)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	logits, _, err := Measure(m)
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for _, r := range want.Rows {
		for i, id := range r.IDs {
			worst = math.Max(worst, math.Abs(float64(logits[r.Pos][id]-r.Logits[i])))
		}
	}
	if worst < 100*Tolerance(v.Type) {
		t.Fatalf("ignoring linear scaling moves the logits by only %.3g", worst)
	}
}
