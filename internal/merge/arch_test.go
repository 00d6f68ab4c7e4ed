package merge

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/llm/refcheck"
)

// GGUF models of architectures qwen2 (q/k/v biases) and qwen3 (q/k norms) and a Llama 3 model with rope_freqs
// merge tensor by tensor, and the child loads in the engine: biases and norms averaged, rope_freqs kept.
func TestMergeQwenAndRopeFreqsModels(t *testing.T) {
	for _, shape := range []string{"qwen2", "qwen3", "llama-rope-freqs"} {
		t.Run(shape, func(t *testing.T) {
			var v refcheck.Variant
			for _, s := range refcheck.Shapes() {
				if s.Shape == shape {
					v = s
				}
			}
			v.Type = gguf.TypeF32
			dir := t.TempDir()
			var paths []string
			for _, suffix := range []string{"", "-other"} {
				w := v
				w.Shape += suffix // another shape name: other weights, same config
				m, err := refcheck.Build(w)
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, "parent"+suffix+".gguf")
				if _, err := m.Save(p); err != nil {
					t.Fatal(err)
				}
				m.Close()
				paths = append(paths, p)
			}
			out := filepath.Join(dir, "child.gguf")
			mustMerge(t, paths, out, Spec{Method: "linear", Base: -1}, Options{})
			child, err := llm.Load(out, llm.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer child.Close()
			if child.Config != v.Config {
				t.Fatalf("child config %+v, want %+v", child.Config, v.Config)
			}
			_, a := readGGUF(t, paths[0])
			_, b := readGGUF(t, paths[1])
			_, c := readGGUF(t, out)
			for name, cv := range c {
				for i := range cv {
					if want := (a[name][i] + b[name][i]) / 2; math.Abs(float64(cv[i]-want)) > 1e-6 {
						t.Fatalf("%s[%d] = %v, want %v", name, i, cv[i], want)
					}
				}
			}
			if _, err := child.Logits([]int32{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
