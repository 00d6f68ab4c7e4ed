package train

import (
	"context"
	"math"
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
	tr, err := newTrainer(cfg, base, seqs, opsAuto)
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
// sets it): a model loaded on the GPU is fine-tuned on the GPU, on ggml's native ops (the package's CPU
// kernels would run on copies of the device tensors), and trains as the same job on the CPU does: the weights
// move, and the losses and final weights agree with the CPU run's. The tolerances are those of
// TestNativeOpsMatchFusedKernels widened 10x for cuBLAS's own summation order.
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
	if gpu.Backend().CPUOnly() {
		t.Fatalf("model loaded with -device cuda runs on %q", gpu.Backend().Name())
	}
	for _, cfg := range []Config{
		{Steps: 5, LR: 3e-3, BatchSize: 2, Seed: 1},
		{Method: "lora", Steps: 5, LR: 1e-2, BatchSize: 2, Accum: 2, Seed: 2},
	} {
		var gpuLosses []float64
		out, res, err := Run(context.Background(), Job{Base: gpu, Data: qa, Config: cfg,
			Progress: func(p Progress) { gpuLosses = append(gpuLosses, p.Loss) }})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if !strings.HasPrefix(res.Backend, "cuda") || !strings.HasPrefix(out.Backend().Name(), "cuda") {
			t.Fatalf("fine-tune ran on %q, result on %q; want cuda", res.Backend, out.Backend().Name())
		}
		cpuLosses, cpuOut := stepLosses(t, Job{Base: cpu, Data: qa, Config: cfg})
		for i := range cpuLosses {
			if rel := math.Abs(gpuLosses[i]-cpuLosses[i]) / math.Abs(cpuLosses[i]); rel > 1e-3 {
				t.Errorf("%s step %d: loss on the GPU %v, on the CPU %v", cfg.Method, i+1, gpuLosses[i], cpuLosses[i])
			}
		}
		moved, apart := weightDrift(t, cpu, out, cpuOut)
		t.Logf("%s: weights moved %.3e on the GPU, GPU vs CPU %.3e apart", cfg.Method, moved, apart)
		if moved == 0 || apart > 1e-1*moved {
			t.Errorf("%s: weights moved %.3e on the GPU, %.3e away from the CPU run's", cfg.Method, moved, apart)
		}
	}
}
