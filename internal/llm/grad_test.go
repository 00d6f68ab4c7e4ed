package llm

import (
	"math"
	"testing"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
)

// Training runs through Forward, so its gradients must be right for every architecture and RoPE variant: the
// RoPE backward with frequency factors and linear scaling, the q/k/v biases, the per-head q/k norms. Each is
// compared with central finite differences of the loss.
func TestArchGradients(t *testing.T) {
	cfgs := archConfigs()
	cfgs["llama"] = tinyCfg
	for name, cfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			m := archModel(t, cfg, gguf.TypeF32, nil)
			kinds := []string{"token_embd.weight", "blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.0.attn_v.weight"}
			switch cfg.Architecture() {
			case "qwen2":
				kinds = append(kinds, "blk.1.attn_q.bias", "blk.1.attn_k.bias", "blk.0.attn_v.bias")
			case "qwen3":
				kinds = append(kinds, "blk.1.attn_q_norm.weight", "blk.1.attn_k_norm.weight")
			}
			worst := gradCheck(t, m, kinds)
			t.Logf("worst relative gradient error %.2e", worst)
		})
	}
}

func gradCheck(t *testing.T, m *Model, kinds []string) float64 {
	cfg := m.Config
	b := m.Backend()
	specs := m.Specs()
	const L = 12
	wctx := ggml.NewContext(len(specs)+8, 0, false)
	defer wctx.Free()
	byName := map[string]ggml.Tensor{}
	for _, s := range specs {
		w := wctx.New(ggml.F32, s.Shape...).SetName(s.Name)
		if Trainable(s.Name) {
			w.SetParam()
		}
		byName[s.Name] = w
	}
	tok, pos := wctx.New(ggml.I32, L), wctx.New(ggml.I32, L)
	mask, labels := wctx.New(ggml.F32, L, L), wctx.New(ggml.F32, int64(cfg.Vocab), L)
	buf, err := b.Alloc(wctx)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	for _, s := range specs {
		v, err := m.TensorF32(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		byName[s.Name].SetF32(v)
	}
	ids, p := make([]int32, L), make([]int32, L)
	lab := make([]float32, cfg.Vocab*L)
	for i := range ids {
		ids[i], p[i] = int32(7*i+3)%int32(cfg.Vocab), int32(i)
		lab[i*cfg.Vocab+(11*i+5)%cfg.Vocab] = 1
	}
	tok.SetI32(ids)
	pos.SetI32(p)
	mask.SetF32(CausalMask(0, L, nil))
	labels.SetF32(lab)

	size := 4096
	gctx := ggml.NewContext(2*size, size, true)
	defer gctx.Free()
	g := gctx.NewGraph(size, true)
	w := WeightsFrom(cfg, byName)
	logits := Forward(gctx, g, cfg, &w, Batch{Tokens: tok, Pos: pos, Mask: mask, L: L, B: 1})
	loss := gctx.CrossEntropy(logits, labels)
	loss.SetLoss()
	loss.SetOutput()
	g.Expand(loss)
	g.BuildBackward(gctx)
	for _, r := range gctx.NormOutputs() {
		if gr := g.Grad(r); !gr.Nil() {
			gr.SetOutput()
		}
	}
	grads := map[string]ggml.Tensor{}
	for _, k := range kinds {
		gr := g.Grad(byName[k])
		if gr.Nil() {
			t.Fatalf("%s has no gradient", k)
		}
		gr.SetOutput()
		grads[k] = gr
	}
	if err := b.AllocGraph(g); err != nil {
		t.Fatal(err)
	}
	lossAt := func() float64 {
		g.Reset()
		if err := b.Compute(g); err != nil {
			t.Fatal(err)
		}
		return float64(loss.F32()[0])
	}
	lossAt()
	analytic := map[string][]float32{}
	for k, gr := range grads {
		analytic[k] = gr.F32()
	}
	worst := 0.0
	for _, k := range kinds {
		wt, ga := byName[k], analytic[k]
		vals := wt.F32()
		for _, i := range topAbs(ga, 2) {
			h := float32(1e-2)
			orig := vals[i]
			vals[i] = orig + h
			wt.SetF32(vals)
			up := lossAt()
			vals[i] = orig - h
			wt.SetF32(vals)
			down := lossAt()
			vals[i] = orig
			wt.SetF32(vals)
			num := (up - down) / float64(2*h)
			rel := math.Abs(num-float64(ga[i])) / math.Max(math.Abs(num), math.Abs(float64(ga[i])))
			worst = math.Max(worst, rel)
			if rel > 0.05 || ga[i] == 0 {
				t.Errorf("%s[%d]: analytic %v, numeric %v", k, i, ga[i], num)
			}
		}
	}
	return worst
}

func topAbs(v []float32, k int) []int {
	var idx []int
	used := map[int]bool{}
	for len(idx) < k && len(idx) < len(v) {
		best := -1
		for i, x := range v {
			if !used[i] && (best < 0 || math.Abs(float64(x)) > math.Abs(float64(v[best]))) {
				best = i
			}
		}
		used[best] = true
		idx = append(idx, best)
	}
	return idx
}
