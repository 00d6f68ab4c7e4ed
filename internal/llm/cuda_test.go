package llm

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/evomerge/evomerge/internal/gguf"
)

// TestCUDAMatchesCPU runs only where a CUDA build of ggml is given (EVOMERGE_CUDA_LIB, see infra/gpu-check.sh):
// the same model scores the same pairs on the CPU and the GPU, log-probs within 1e-3.
func TestCUDAMatchesCPU(t *testing.T) {
	lib := os.Getenv("EVOMERGE_CUDA_LIB")
	if lib == "" {
		t.Skip("EVOMERGE_CUDA_LIB not set: no CUDA build of ggml on this machine (infra/gpu-check.sh runs this on a GPU)")
	}
	cpu := sharpModel(t, gguf.TypeF32)
	path := t.TempDir() + "/m.gguf"
	if _, err := cpu.Save(path); err != nil {
		t.Fatal(err)
	}
	gpu, err := Load(path, Options{Device: "cuda", CUDALibrary: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer gpu.Close()
	t.Logf("gpu backend: %s", gpu.Backend().Name())
	pairs := question()
	for i := range pairs {
		pairs[i].Context = pairs[i].Context[:40]
	}
	want, err := cpu.Score(context.Background(), pairs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gpu.Score(context.Background(), pairs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if d := math.Abs(got[i].LogProb - want[i].LogProb); d > 1e-3 {
			t.Errorf("pair %d: gpu %v cpu %v", i, got[i].LogProb, want[i].LogProb)
		}
	}
	for name, m := range map[string]*Model{"cpu": cpu, "gpu": gpu} {
		start := time.Now()
		n := 0
		for time.Since(start) < 2*time.Second {
			if _, err := m.Score(context.Background(), pairs); err != nil {
				t.Fatal(err)
			}
			n++
		}
		tokens := 0
		for _, p := range pairs {
			tokens += len(p.Context) + len(p.Continuation) + 1
		}
		t.Logf("%s: %.0f scored tokens/s", name, float64(n*tokens)/time.Since(start).Seconds())
	}
}
