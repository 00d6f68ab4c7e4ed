package train

import (
	"context"
	"math"
	"testing"

	"github.com/evomerge/evomerge/internal/llm"
)

// ggml op ids of the pinned version (include/ggml.h enum ggml_op).
const (
	opMapCustom1   = 86
	opCustom       = 89
	opOptStepAdamW = 92
)

func countOps(nodes []int, lo, hi int) int {
	n := 0
	for _, op := range nodes {
		if op >= lo && op <= hi {
			n++
		}
	}
	return n
}

func graphOps(tr *trainer) (fwd, opt []int) {
	for _, t := range tr.gRun.Nodes() {
		fwd = append(fwd, t.Op())
	}
	for _, t := range tr.gB.Nodes() {
		opt = append(opt, t.Op())
	}
	return fwd, opt
}

// The native path holds no custom op (a GPU backend cannot run them; the scheduler would run them on the CPU
// over copies of device tensors, losing AdamW's in-place update), and the CPU path takes the fused kernels.
func TestNativeOpsHaveNoCustomOp(t *testing.T) {
	base := tinyModel(t, 8)
	seqs, _ := tokenize(base.Tok, qa, base.Window())
	for _, method := range []string{"full", "lora"} {
		cfg, err := Config{Method: method, Steps: 1, LR: 1e-3, BatchSize: 2, Seed: 1}.withDefaults(base.Config)
		if err != nil {
			t.Fatal(err)
		}
		for _, ops := range []opsPath{opsAuto, opsNative} {
			tr, err := newTrainer(cfg, base, seqs, ops)
			if err != nil {
				t.Fatal(err)
			}
			fwd, opt := graphOps(tr)
			custom := countOps(fwd, opMapCustom1, opCustom) + countOps(opt, opMapCustom1, opCustom)
			adamw := countOps(opt, opOptStepAdamW, opOptStepAdamW)
			if ops == opsNative && (custom != 0 || adamw != len(tr.params) || !tr.native) {
				t.Errorf("%s, native ops: %d custom nodes, %d OPT_STEP_ADAMW for %d parameters", method, custom, adamw, len(tr.params))
			}
			if ops == opsAuto && (custom == 0 || adamw != 0 || tr.native) {
				t.Errorf("%s on the CPU: %d custom nodes, %d OPT_STEP_ADAMW: the fused kernels are not used", method, custom, adamw)
			}
			tr.close()
		}
	}
}

// stepLosses runs job and returns its per-step losses and the trained model.
func stepLosses(t *testing.T, job Job) ([]float64, *llm.Model) {
	t.Helper()
	var losses []float64
	job.Progress = func(p Progress) { losses = append(losses, p.Loss) }
	out, _, err := Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Close)
	return losses, out
}

// weightDrift compares two fine-tunes of base: moved is the L2 norm of a's change from base, apart the L2 norm
// of a − b, over every tensor.
func weightDrift(t *testing.T, base, a, b *llm.Model) (moved, apart float64) {
	t.Helper()
	for _, s := range base.Specs() {
		w0, err := base.TensorF32(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		wa, err := a.TensorF32(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := b.TensorF32(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range w0 {
			d, e := float64(wa[i]-w0[i]), float64(wa[i]-wb[i])
			moved += d * d
			apart += e * e
		}
	}
	return math.Sqrt(moved), math.Sqrt(apart)
}

// ggml's native ops (what a GPU backend runs) train as the fused CPU kernels do: over 5 steps the losses agree
// to 1e-4 relative, and the weights end where the fused run's do, for a full fine-tune (Accum 1: the optimizer
// reads the gradients in place) and LoRA (Accum 2: through the accumulators). The two paths sum products and
// softmax rows in different orders (ggml's kernels vs the package's GEMM and fused cross-entropy), so they are
// not bit-identical.
func TestNativeOpsMatchFusedKernels(t *testing.T) {
	base := tinyModel(t, 8)
	for _, cfg := range []Config{
		{Steps: 5, LR: 3e-3, BatchSize: 3, Seed: 8, WeightDecay: 0.01},
		{Method: "lora", Steps: 5, LR: 1e-2, BatchSize: 2, Accum: 2, Seed: 9, Targets: []string{"q", "v", "down"}},
	} {
		name := cfg.Method
		if name == "" {
			name = "full"
		}
		fused, fusedOut := stepLosses(t, Job{Base: base, Data: qa, Config: cfg})
		native, nativeOut := stepLosses(t, Job{Base: base, Data: qa, Config: cfg, ops: opsNative})
		worst := 0.0
		for i := range fused {
			rel := math.Abs(native[i]-fused[i]) / math.Abs(fused[i])
			worst = math.Max(worst, rel)
			if rel > 1e-4 {
				t.Errorf("%s step %d: native loss %v, fused %v (relative %.1e)", name, i+1, native[i], fused[i], rel)
			}
		}
		moved, apart := weightDrift(t, base, fusedOut, nativeOut)
		t.Logf("%s: worst relative loss difference %.1e; weights moved %.3e, native vs fused %.3e", name, worst, moved, apart)
		if moved == 0 || apart > 1e-2*moved {
			t.Errorf("%s: weights moved %.3e from the base, native and fused runs %.3e apart", name, moved, apart)
		}
	}
}
