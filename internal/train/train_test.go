package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/llm"
)

var tiny = llm.Config{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 128, Context: 64, RopeBase: 10000, NormEps: 1e-5}

func tinyModel(t testing.TB, seed uint64) *llm.Model {
	t.Helper()
	m, err := llm.NewTiny(tiny, seed, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func modelBytes(t testing.TB, m *llm.Model) []byte {
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var qa = []Example{
	{Prompt: "12+30=", Completion: "42"},
	{Prompt: "7+8=", Completion: "15"},
	{Prompt: "20+5=", Completion: "25"},
	{Prompt: "3+3=", Completion: "6"},
}

func TestMemorisesASequence(t *testing.T) {
	base := tinyModel(t, 1)
	var last float64
	out, res, err := Run(context.Background(), Job{Base: base, Data: []Example{{Text: "the quick brown fox jumps"}},
		Config:   Config{Steps: 150, LR: 1e-2, Warmup: 10, BatchSize: 1, Seed: 1},
		Progress: func(p Progress) { last = p.Loss }})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if last >= 0.01 || res.FinalLoss != last {
		t.Fatalf("final loss %v (want < 0.01)", last)
	}
	if got, _ := out.Generate(context.Background(), "", llm.GenerateOptions{MaxTokens: 40}); got != "the quick brown fox jumps" {
		t.Fatalf("memorised model generates %q", got)
	}
}

func TestResumeIsBitIdentical(t *testing.T) { resumeIsBitIdentical(t, opsAuto) }

// On ggml's native ops (what a GPU backend runs) too.
func TestResumeIsBitIdenticalNativeOps(t *testing.T) { resumeIsBitIdentical(t, opsNative) }

func resumeIsBitIdentical(t *testing.T, ops opsPath) {
	base := tinyModel(t, 2)
	cfg := Config{Steps: 9, LR: 3e-3, Warmup: 2, BatchSize: 3, Accum: 2, Seed: 5, WeightDecay: 0.01}
	straight, straightRes, err := Run(context.Background(), Job{Base: base, Data: qa, Config: cfg, ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	defer straight.Close()
	if straightRes.TokensTotal != straightRes.Tokens || straightRes.Tokens <= 0 {
		t.Fatalf("straight run: tokens %d, total %d", straightRes.Tokens, straightRes.TokensTotal)
	}

	dir := t.TempDir()
	cfg.CheckpointEvery = 4
	var ckpts []string
	// First run: cancelled after step 5 (a checkpoint at 4, another written on cancellation at 5).
	ctx, cancel := context.WithCancel(context.Background())
	_, _, err = Run(ctx, Job{Base: base, Data: qa, Config: cfg, CheckpointDir: dir, ops: ops,
		OnCheckpoint: func(p string, step int) error { ckpts = append(ckpts, p); return nil },
		Progress: func(p Progress) {
			if p.Step == 5 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if len(ckpts) != 2 || !strings.HasSuffix(ckpts[1], "checkpoint-000005.gguf") {
		t.Fatalf("checkpoints %v", ckpts)
	}
	for _, ck := range ckpts {
		resumed, res, err := Run(context.Background(), Job{Base: base, Data: qa, Config: cfg, ResumeFrom: ck, CheckpointDir: t.TempDir(), ops: ops})
		if err != nil {
			t.Fatal(err)
		}
		if res.ResumedAt == 0 || res.Steps != cfg.Steps-res.ResumedAt {
			t.Fatalf("resumed at %d, ran %d steps", res.ResumedAt, res.Steps)
		}
		// The fine-tune is charged its whole cost, whether or not it was interrupted.
		if res.TokensTotal != straightRes.TokensTotal || res.Tokens >= res.TokensTotal {
			t.Fatalf("resumed at %d: total tokens %d (this run %d), straight run %d", res.ResumedAt, res.TokensTotal, res.Tokens, straightRes.TokensTotal)
		}
		if !bytes.Equal(modelBytes(t, resumed), modelBytes(t, straight)) {
			t.Fatalf("resumed from %s: final weights differ from the straight run", filepath.Base(ck))
		}
		resumed.Close()
	}
	// A checkpoint from other hyperparameters is refused.
	other := cfg
	other.LR = 1e-3
	if _, _, err := Run(context.Background(), Job{Base: base, Data: qa, Config: other, ResumeFrom: ckpts[0], CheckpointDir: dir, ops: ops}); err == nil {
		t.Fatal("checkpoint of another configuration accepted")
	}
}

func TestTrainedModelScoresItsDataBetter(t *testing.T) {
	base := tinyModel(t, 3)
	out, _, err := Run(context.Background(), Job{Base: base, Data: qa, Config: Config{Steps: 60, LR: 1e-2, Warmup: 5, BatchSize: 4, Seed: 3}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trained.gguf")
	if _, err := out.Save(path); err != nil {
		t.Fatal(err)
	}
	out.Close()
	loaded, err := llm.Load(path, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	var pairs []llm.Pair
	for _, e := range qa {
		pairs = append(pairs, llm.Pair{Context: e.Prompt, Continuation: e.Completion})
	}
	before, _ := base.Score(context.Background(), pairs)
	after, err := loaded.Score(context.Background(), pairs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range pairs {
		if after[i].LogProb <= before[i].LogProb+1 {
			t.Errorf("%q: log-prob %v after training, %v before", pairs[i].Context, after[i].LogProb, before[i].LogProb)
		}
	}
}

// After merging, the LoRA model computes what the base plus the scaled adapter computes at run time.
func TestLoRAMergeEqualsRuntimeAdapter(t *testing.T) {
	base := tinyModel(t, 4)
	cfg, err := Config{Method: "lora", Steps: 8, LR: 2e-2, BatchSize: 4, Rank: 4, Alpha: 8, Targets: []string{"q", "v", "o", "gate", "up", "down", "k"}, Seed: 4}.withDefaults(base.Config)
	if err != nil {
		t.Fatal(err)
	}
	seqs, _ := tokenize(base.Tok, qa, base.Window())
	tr, err := newTrainer(cfg, base, seqs, opsAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	for i := 0; i < cfg.Steps; i++ {
		if _, _, err := tr.trainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if b := tr.lora[llm.ProjTensorName(0, llm.ProjQ)][1].p.F32(); maxAbs(b) == 0 {
		t.Fatal("adapter B is still zero: nothing to check")
	}
	tokens, _ := base.Tok.Encode("12+30=42")
	runtime := runtimeLogits(t, tr, tokens)
	merged, _, err := tr.result()
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()
	got, err := merged.Logits(tokens)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		for j := range got[i] {
			if d := math.Abs(float64(got[i][j] - runtime[i][j])); d > 1e-5*math.Max(1, math.Abs(float64(runtime[i][j]))) {
				t.Fatalf("position %d token %d: merged %v, runtime adapter %v", i, j, got[i][j], runtime[i][j])
			}
		}
	}
}

func runtimeLogits(t *testing.T, tr *trainer, tokens []int32) [][]float32 {
	b, err := ggml.NewBackend(ggml.BackendOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := ggml.NewContext(8192, 4096, false)
	defer c.Free()
	n := len(tokens)
	g := c.NewGraph(4096, false)
	tok, pos, mask := c.New(ggml.I32, int64(n)), c.New(ggml.I32, int64(n)), c.New(ggml.F32, int64(n), int64(n))
	for _, x := range []ggml.Tensor{tok, pos, mask} {
		x.SetInput()
	}
	w := llm.WeightsFrom(tr.model, tr.weights)
	logits := llm.Forward(c, g, tr.model, &w, llm.Batch{Tokens: tok, Pos: pos, Mask: mask, L: n, B: 1, Linear: tr.linear(c)})
	logits.SetOutput()
	g.Expand(logits)
	if err := b.AllocGraph(g); err != nil {
		t.Fatal(err)
	}
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	tok.SetI32(tokens)
	pos.SetI32(p)
	mask.SetF32(llm.CausalMask(0, n, nil))
	if err := b.Compute(g); err != nil {
		t.Fatal(err)
	}
	flat := logits.F32()
	V := tr.model.Vocab
	out := make([][]float32, n)
	for i := range out {
		out[i] = flat[i*V : (i+1)*V]
	}
	return out
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// The analytic gradient of every parameter kind of a llama block (and the embedding, final norm and output)
// agrees with central finite differences of the loss.
func TestGradientCheck(t *testing.T) { gradientCheck(t, opsAuto) }

// On ggml's native ops (what a GPU backend runs) too.
func TestGradientCheckNativeOps(t *testing.T) { gradientCheck(t, opsNative) }

func gradientCheck(t *testing.T, ops opsPath) {
	base := tinyModel(t, 6)
	cfg, _ := Config{Steps: 1, LR: 1e-3, BatchSize: 2, Seed: 6}.withDefaults(base.Config)
	seqs, _ := tokenize(base.Tok, qa, base.Window())
	tr, err := newTrainer(cfg, base, seqs, ops)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	// Make the weights larger than the init so every path carries a visible gradient.
	for name, w := range tr.weights {
		v := w.F32()
		for i := range v {
			if w.Ne(1) > 1 {
				v[i] *= 10
			} else {
				v[i] += 0.1 * float32(math.Sin(float64(i)+float64(len(name))))
			}
		}
		w.SetF32(v)
	}
	tr.nextBatch()
	tr.keep.SetF32([]float32{0})
	lossAt := func() float64 {
		if err := tr.compute(); err != nil {
			t.Fatal(err)
		}
		return tr.lossValue()
	}
	lossAt()
	kinds := []string{"token_embd.weight", "output_norm.weight", "output.weight"}
	for _, k := range []string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"} {
		kinds = append(kinds, "blk.1."+k+".weight")
	}
	grads := map[string][]float32{}
	for _, tp := range tr.params {
		grads[tp.name] = tp.gradient().F32()
	}
	worst := 0.0
	for _, name := range kinds {
		w := tr.weights[name]
		g := grads[name]
		// The two elements with the largest gradients.
		idx := topK(g, 2)
		vals := w.F32()
		for _, i := range idx {
			h := float32(1e-2)
			orig := vals[i]
			vals[i] = orig + h
			w.SetF32(vals)
			up := lossAt()
			vals[i] = orig - h
			w.SetF32(vals)
			down := lossAt()
			vals[i] = orig
			w.SetF32(vals)
			num := (up - down) / float64(2*h)
			rel := math.Abs(num-float64(g[i])) / math.Max(math.Abs(num), math.Abs(float64(g[i])))
			worst = math.Max(worst, rel)
			if rel > 0.05 {
				t.Errorf("%s[%d]: analytic %v, numeric %v", name, i, g[i], num)
			}
		}
	}
	t.Logf("worst relative gradient error %.2e", worst)
}

func topK(v []float32, k int) []int {
	var idx []int
	used := map[int]bool{}
	for len(idx) < k {
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

func TestDivergenceIsTyped(t *testing.T) {
	base := tinyModel(t, 7)
	_, _, err := Run(context.Background(), Job{Base: base, Data: qa, Config: Config{Steps: 30, LR: 1e30, BatchSize: 4, Seed: 1, ClipNorm: f64(0)}})
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("got %v, want ErrDiverged", err)
	}
}

func TestBadInputs(t *testing.T) {
	base := tinyModel(t, 8)
	long := []Example{{Prompt: strings.Repeat("x", 80), Completion: "y"}}
	cases := map[string]struct {
		data []Example
		cfg  Config
		want string
	}{
		"empty":    {nil, Config{Steps: 1, LR: 1e-3}, "empty"},
		"too long": {long, Config{Steps: 1, LR: 1e-3}, "more than the context"},
		"rank":     {qa, Config{Method: "lora", Rank: 1000, Steps: 1, LR: 1e-3}, "LoRA rank 1000"},
		"lr zero":  {qa, Config{Steps: 1, LR: 0}, "learning rate"},
		"lr neg":   {qa, Config{Steps: 1, LR: -1}, "learning rate"},
		"target":   {qa, Config{Method: "lora", Targets: []string{"qkv"}, Steps: 1, LR: 1e-3}, `target "qkv"`},
		"method":   {qa, Config{Method: "dpo", Steps: 1, LR: 1e-3}, `method "dpo"`},
		"no steps": {qa, Config{LR: 1e-3}, "steps"},
		"ckpt dir": {qa, Config{Steps: 2, LR: 1e-3, CheckpointEvery: 1}, "checkpoint directory"},
	}
	for name, c := range cases {
		_, _, err := Run(context.Background(), Job{Base: base, Data: c.data, Config: c.cfg})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	if _, err := ReadJSONL(strings.NewReader("{\"prompt\":\"a\",\"completion\":\"b\"}\n{oops}\n"), "d.jsonl"); err == nil || !strings.Contains(err.Error(), "d.jsonl:2") {
		t.Errorf("malformed line: %v", err)
	}
	if _, err := ReadJSONL(strings.NewReader("\n\n"), "e.jsonl"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
}
