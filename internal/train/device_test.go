package train

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/llm"
)

// The trainer runs on the base model's backend: same device, library and threads. (Before, it made its
// backends from the thread count alone, so a model on the GPU was fine-tuned on the CPU.)
func TestTrainerUsesTheModelsBackend(t *testing.T) {
	// 3 threads: neither the test default (1) nor what an empty option means on this machine.
	base, err := llm.NewTiny(tiny, 1, llm.Options{Threads: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	seqs, err := tokenize(base.Tok, qa, base.Window())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Config{Steps: 1, LR: 1e-3, BatchSize: 2, Seed: 1}.withDefaults(base.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer(cfg, base, seqs)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	want := base.Backend().Options()
	if got := tr.fwd.Options(); got != want {
		t.Errorf("forward backend %+v, model's %+v", got, want)
	}
	if got := tr.opt.Options(); got != want {
		t.Errorf("optimizer backend %+v, model's %+v", got, want)
	}
}

func TestFineTuneReportsAndKeepsTheDevice(t *testing.T) {
	base := tinyModel(t, 2)
	out, res, err := Run(context.Background(), Job{Base: base, Data: qa, Config: Config{Steps: 1, LR: 1e-3, BatchSize: 2, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if res.Backend != base.Backend().Name() {
		t.Errorf("trained on %q, the model runs on %q", res.Backend, base.Backend().Name())
	}
	if got, want := out.Backend().Options(), base.Backend().Options(); got != want {
		t.Errorf("fine-tuned model on %+v, base on %+v", got, want)
	}
}

// TestFineTuneOnCUDA runs where a CUDA build of ggml is given (EVOMERGE_CUDA_LIB, as infra/gpu-check.sh
// sets it): a model loaded on the GPU is fine-tuned on the GPU.
func TestFineTuneOnCUDA(t *testing.T) {
	lib := os.Getenv("EVOMERGE_CUDA_LIB")
	if lib == "" {
		t.Skip("EVOMERGE_CUDA_LIB not set: no CUDA build of ggml here (infra/gpu-check.sh runs this on a GPU)")
	}
	cpu := tinyModel(t, 3)
	path := t.TempDir() + "/m.gguf"
	if _, err := cpu.Save(path); err != nil {
		t.Fatal(err)
	}
	gpu, err := llm.Load(path, llm.Options{Device: "cuda", CUDALibrary: lib, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer gpu.Close()
	out, res, err := Run(context.Background(), Job{Base: gpu, Data: qa, Config: Config{Steps: 2, LR: 1e-3, BatchSize: 2, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if !strings.HasPrefix(res.Backend, "cuda") || !strings.HasPrefix(out.Backend().Name(), "cuda") {
		t.Fatalf("fine-tune ran on %q, result on %q; want cuda", res.Backend, out.Backend().Name())
	}
}
