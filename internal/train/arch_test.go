package train

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/llm/refcheck"
)

// archBases are tiny byte-level models of each architecture and RoPE variant; the Llama 3 one carries real
// Llama 3.1-style frequency factors, so that training and scoring disagreeing on positions would show.
func archBase(t *testing.T, name string) *llm.Model {
	t.Helper()
	cfg := tiny
	switch name {
	case "qwen2":
		cfg.Arch = "qwen2"
	case "qwen3":
		cfg.Arch, cfg.HeadSize = "qwen3", 32
	case "llama3-rope-freqs":
		cfg.RopeFreqs = true
	case "linear4":
		cfg.RopeScale = 4
	}
	m, err := llm.NewTiny(cfg, 5, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	data := map[string][]byte{}
	for _, s := range m.Specs() {
		b, _ := m.TensorData(s.Name)
		data[s.Name] = b
	}
	if cfg.RopeFreqs {
		f := refcheck.Llama3RopeFreqs(m.Config.HeadDim(), cfg.RopeBase, 8, 1, 4, 16)
		b := make([]byte, 4*len(f))
		for i, v := range f {
			putF32(b[4*i:], v)
		}
		data["rope_freqs.weight"] = b
	}
	out, err := llm.FromHost(m.Config, m.Tok, m.ExtraMetadata(), m.Specs(), data, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Close)
	return out
}

// A full fine-tune of every architecture memorises a sequence, trains the biases and q/k norms, leaves
// rope_freqs alone, and the saved file generates the sequence: training ran under the positions scoring uses.
func TestFullFineTuneEveryArchitecture(t *testing.T) {
	const text = "the quick brown fox jumps"
	for _, name := range []string{"qwen2", "qwen3", "llama3-rope-freqs", "linear4"} {
		t.Run(name, func(t *testing.T) {
			base := archBase(t, name)
			out, res, err := Run(context.Background(), Job{Base: base, Data: []Example{{Text: text}},
				Config: Config{Steps: 150, LR: 1e-2, Warmup: 10, BatchSize: 1, Seed: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if res.FinalLoss > 0.05 {
				t.Errorf("final loss %v", res.FinalLoss)
			}
			for _, s := range base.Specs() {
				a, _ := base.TensorF32(s.Name)
				b, _ := out.TensorF32(s.Name)
				changed := !slices.Equal(a, b)
				switch {
				case s.Name == "rope_freqs.weight" && changed:
					t.Error("rope_freqs.weight was trained")
				case (strings.HasSuffix(s.Name, ".bias") || strings.Contains(s.Name, "_q_norm") || strings.Contains(s.Name, "_k_norm")) && !changed:
					t.Errorf("%s was not trained", s.Name)
				}
			}
			path := filepath.Join(t.TempDir(), "ft.gguf")
			if _, err := out.Save(path); err != nil {
				t.Fatal(err)
			}
			out.Close()
			loaded, err := llm.Load(path, llm.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer loaded.Close()
			if loaded.Config != base.Config {
				t.Fatalf("config %+v after saving, want %+v", loaded.Config, base.Config)
			}
			if got, _ := loaded.Generate(context.Background(), "", llm.GenerateOptions{MaxTokens: 40}); got != text {
				t.Fatalf("the saved model generates %q", got)
			}
		})
	}
}

// LoRA on every architecture lowers the loss of its data and, merged, keeps the frozen biases and norms.
func TestLoRAEveryArchitecture(t *testing.T) {
	for _, name := range []string{"qwen2", "qwen3", "llama3-rope-freqs"} {
		t.Run(name, func(t *testing.T) {
			base := archBase(t, name)
			var first, last float64
			out, _, err := Run(context.Background(), Job{Base: base, Data: qa,
				Config: Config{Method: "lora", Steps: 40, LR: 2e-2, BatchSize: 4, Rank: 4, Alpha: 8,
					Targets: []string{"q", "k", "v", "o", "gate", "up", "down"}, Seed: 2},
				Progress: func(p Progress) {
					if p.Step == 1 {
						first = p.Loss
					}
					last = p.Loss
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			if last > first-0.5 {
				t.Errorf("loss %v -> %v", first, last)
			}
			for _, s := range base.Specs() {
				if len(s.Shape) != 1 {
					continue
				}
				a, _ := base.TensorF32(s.Name)
				b, _ := out.TensorF32(s.Name)
				if !slices.Equal(a, b) {
					t.Errorf("LoRA changed %s", s.Name)
				}
			}
		})
	}
}

func putF32(b []byte, v float32) {
	u := math.Float32bits(v)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}
