package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/llm"
)

// Progress is reported after every optimizer step.
type Progress struct {
	Step, Steps  int
	Loss         float64 // mean loss over the learned tokens of this step
	LR           float64
	TokensPerSec float64
}

// Job is one fine-tune.
type Job struct {
	Base   *llm.Model // the model to start from (not modified)
	Data   []Example
	Config Config
	// ResumeFrom is a checkpoint file to continue from ("" to start fresh).
	ResumeFrom string
	// CheckpointDir is where checkpoints are written (required when Config.CheckpointEvery > 0 or to
	// checkpoint on cancellation).
	CheckpointDir string
	// OnCheckpoint is called with each checkpoint written (path, step), e.g. to copy it to a store.
	OnCheckpoint func(path string, step int) error
	Progress     func(Progress)
	// ops picks the kernels (tests force ggml's native ones on the CPU).
	ops opsPath
}

// opsPath chooses the kernels of the training graphs.
type opsPath int

const (
	// opsAuto: the package's fused CPU kernels (training GEMM, fused cross-entropy, one-pass gradient norm,
	// fused AdamW) when the backend is the CPU alone, ggml's native ops when it has a GPU.
	opsAuto opsPath = iota
	// opsNative: ggml's native ops (MUL_MAT, OUT_PROD rewritten as MUL_MAT, masked dense-label cross-entropy,
	// SUM(SQR), OPT_STEP_ADAMW), which every backend runs on its own device.
	opsNative
)

// Result summarises a finished fine-tune.
type Result struct {
	Steps     int     // steps taken in this run (after a resume: the remaining ones)
	ResumedAt int     // the step the run resumed from
	FinalLoss float64 // loss of the last step
	Tokens    int64   // tokens processed in this run
	// TokensTotal counts the tokens of every step of the fine-tune, those
	// before a resume included (kept in the checkpoint): a crash does not
	// change what a fine-tune is charged.
	TokensTotal int64
	TokensPerS  float64
	Backend     string // where it trained (ggml.Backend.Name()): the base model's device
	// Requantized names the LoRA-adapted tensors of a quantized base (Q8_0, Q4_K...): each was dequantized,
	// had the adapter added and was quantized again to its type, so it carries a second rounding.
	Requantized []string
	// StateBytes is the trainer's own resident memory: the trained tensors (F32 weights, or LoRA's adapters),
	// their AdamW moments and accumulators, and the step's inputs. The frozen base of a LoRA run is not in it.
	StateBytes int64
	// GraphBytes is the memory of the forward/backward and optimizer graphs' intermediate tensors
	// (activations, gradients, temporaries).
	GraphBytes int64
}

// trainable is a tensor the optimizer updates, with its AdamW moments and gradient accumulator.
type trainable struct {
	name         string
	p, m, v, acc ggml.Tensor // acc: only with Accum > 1 (otherwise the optimizer reads grad itself)
	decay        bool        // weight decay applies (matrices)
	grad         ggml.Tensor // the backward pass's gradient
	accNext      ggml.Tensor // the step's gradient so far: acc·keep + grad, or grad when Accum is 1
}

// gradient is the tensor the optimizer step reads: the accumulator, or with Accum 1 the backward pass's own
// gradient (an output of the graph, so its memory survives until the optimizer graph runs).
func (tr *trainable) gradient() ggml.Tensor {
	if tr.acc.Nil() {
		return tr.grad
	}
	return tr.acc
}

// trainer holds the state of one run.
type trainer struct {
	cfg     Config
	trained int64 // tokens of every step so far, across resumes
	model   llm.Config
	base    *llm.Model
	seqs    []sequence
	L, B, V int

	fwd, opt *ggml.Backend // fwd/bwd graph and optimizer graph keep their own allocations
	static   *ggml.Context
	buf      *ggml.Buffer
	weights  map[string]ggml.Tensor // every weight: F32 copies (full) or the base's own tensors (LoRA, frozen)
	params   []*trainable
	lora     map[string][2]*trainable // projection tensor name -> (A, B)

	tokens, pos, mask, targets, rowWeights, keep ggml.Tensor
	adamDecay, adamNoDecay, gradScale            ggml.Tensor
	// Host copies of the per-step inputs, kept between steps (no allocation per step).
	tokenBuf, targetBuf []int32
	weightBuf           []float32

	// native: the graphs use ggml's native ops only (a GPU backend, or forced by a test); the loss is then
	// ggml's dense-label cross-entropy over row-masked logits, scaled to the mean over learned rows.
	native                     bool
	labels, rowMask, lossScale ggml.Tensor
	labelBuf, rowMaskBuf       []float32
	learned                    int // learned rows of the current batch (native path)

	gctx, octx   *ggml.Context
	gA, gB       ggml.Graph // gA: forward and backward as ggml built them (gradient lookups)
	gRun         ggml.Graph // gA with the matrix-product backward rewritten (what is computed)
	loss, gnorm2 ggml.Tensor
	lossSeed     ggml.Tensor // d loss/d loss, set to 1 before each compute

	step, epoch, cursor int
	order               []int
}

// Run fine-tunes job.Base and returns the new model (the caller saves and closes it).
func Run(ctx context.Context, job Job) (*llm.Model, Result, error) {
	if job.Base == nil {
		return nil, Result{}, fmt.Errorf("train: no base model")
	}
	cfg, err := job.Config.withDefaults(job.Base.Config)
	if err != nil {
		return nil, Result{}, err
	}
	if len(job.Data) == 0 {
		return nil, Result{}, fmt.Errorf("train: the dataset is empty")
	}
	seqs, err := tokenize(job.Base.Tok, job.Data, job.Base.Window())
	if err != nil {
		return nil, Result{}, err
	}
	if cfg.CheckpointEvery > 0 && job.CheckpointDir == "" {
		return nil, Result{}, fmt.Errorf("train: checkpoint_every is set but no checkpoint directory was given")
	}
	t, err := newTrainer(cfg, job.Base, seqs, job.ops)
	if err != nil {
		return nil, Result{}, err
	}
	defer t.close()
	res := Result{Backend: t.fwd.Name(), StateBytes: t.buf.Bytes(), GraphBytes: t.fwd.ComputeBytes() + t.opt.ComputeBytes()}
	if job.ResumeFrom != "" {
		if err := t.loadCheckpoint(job.ResumeFrom); err != nil {
			return nil, Result{}, err
		}
		res.ResumedAt = t.step
	}
	start := time.Now()
	for t.step < cfg.Steps {
		if err := ctx.Err(); err != nil {
			if job.CheckpointDir != "" {
				if _, cerr := t.checkpoint(job); cerr != nil {
					return nil, res, fmt.Errorf("%w (and the checkpoint on cancellation failed: %v)", err, cerr)
				}
			}
			return nil, res, err
		}
		stepStart := time.Now()
		loss, tokens, err := t.trainStep()
		if err != nil {
			return nil, res, err
		}
		res.Steps++
		res.Tokens += tokens
		t.trained += tokens
		res.FinalLoss = loss
		if job.Progress != nil {
			job.Progress(Progress{Step: t.step, Steps: cfg.Steps, Loss: loss, LR: cfg.lrAt(t.step - 1),
				TokensPerSec: float64(tokens) / time.Since(stepStart).Seconds()})
		}
		if cfg.CheckpointEvery > 0 && t.step%cfg.CheckpointEvery == 0 && t.step < cfg.Steps {
			if _, err := t.checkpoint(job); err != nil {
				return nil, res, err
			}
		}
	}
	res.TokensPerS = float64(res.Tokens) / time.Since(start).Seconds()
	res.TokensTotal = t.trained
	out, requantized, err := t.result()
	res.Requantized = requantized
	return out, res, err
}

func newTrainer(cfg Config, base *llm.Model, seqs []sequence, ops opsPath) (*trainer, error) {
	t := &trainer{cfg: cfg, model: base.Config, base: base, seqs: seqs, B: cfg.BatchSize, V: base.Config.Vocab,
		weights: map[string]ggml.Tensor{}, lora: map[string][2]*trainable{},
		native: ops == opsNative || !base.Backend().CPUOnly()}
	for i, s := range seqs {
		t.L = max(t.L, len(s.input))
		for _, id := range s.target {
			if id < 0 || int(id) >= t.V {
				return nil, fmt.Errorf("train: sequence %d has token id %d outside the model's vocabulary of %d", i, id, t.V)
			}
		}
	}
	// Train where the model runs: same device, library and threads.
	bo := base.Backend().Options()
	var err error
	if t.fwd, err = ggml.NewBackend(bo); err != nil {
		return nil, err
	}
	if t.opt, err = ggml.NewBackend(bo); err != nil {
		t.close()
		return nil, err
	}
	if err := t.buildStatic(); err != nil {
		t.close()
		return nil, err
	}
	if err := t.buildGraphs(); err != nil {
		t.close()
		return nil, err
	}
	if err := t.fwd.AllocGraph(t.gRun); err != nil {
		t.close()
		return nil, err
	}
	if err := t.buildOptimizer(); err != nil {
		t.close()
		return nil, err
	}
	if err := t.opt.AllocGraph(t.gB); err != nil {
		t.close()
		return nil, err
	}
	t.shuffle()
	return t, nil
}

func (t *trainer) close() {
	if t.gctx != nil {
		t.gctx.Free()
	}
	if t.octx != nil {
		t.octx.Free()
	}
	t.buf.Free()
	if t.static != nil {
		t.static.Free()
	}
	if t.fwd != nil {
		t.fwd.Close()
	}
	if t.opt != nil {
		t.opt.Close()
	}
}

// buildStatic creates the persistent tensors: weights (F32), adapters, AdamW moments, gradient accumulators
// and the inputs, all in one buffer, and fills them.
func (t *trainer) buildStatic() error {
	specs := t.base.Specs()
	n := 4*len(specs) + 64
	if t.cfg.Method == "lora" {
		n += 8 * t.model.Layers * len(t.cfg.Targets)
	}
	t.static = ggml.NewContext(n, 0, false)
	c := t.static
	newTrainable := func(name string, p ggml.Tensor, decay bool) *trainable {
		p.SetName(name)
		p.SetParam()
		tr := &trainable{name: name, p: p, m: c.Dup(p), v: c.Dup(p), decay: decay}
		if t.cfg.Accum > 1 {
			tr.acc = c.Dup(p)
		}
		t.params = append(t.params, tr)
		return tr
	}
	targets := map[llm.Proj]bool{}
	for _, s := range t.cfg.Targets {
		p, _ := llm.ParseProj(s)
		targets[p] = true
	}
	for _, s := range specs {
		if t.cfg.Method != "full" {
			// Frozen: the base's tensor in its own type (F16, BF16, Q8_0, Q4_K...), never an F32 copy. The
			// backward pass only sends gradients through it to the input (see ggml.Graph.OutProdToMulMat).
			w, ok := t.base.Tensor(s.Name)
			if !ok {
				return fmt.Errorf("train: base model has no tensor %s", s.Name)
			}
			t.weights[s.Name] = w
			continue
		}
		w := c.New(ggml.F32, s.Shape...)
		t.weights[s.Name] = w
		if llm.Trainable(s.Name) {
			newTrainable(s.Name, w, len(s.Shape) > 1)
		} else {
			w.SetName(s.Name)
		}
	}
	if t.cfg.Method == "lora" {
		for l := 0; l < t.model.Layers; l++ {
			for p := llm.ProjQ; p <= llm.ProjDown; p++ {
				if !targets[p] {
					continue
				}
				name := llm.ProjTensorName(l, p)
				w := t.weights[name]
				in, out := w.Ne(0), w.Ne(1)
				a := newTrainable("lora_a:"+name, c.New(ggml.F32, in, int64(t.cfg.Rank)), true)
				b := newTrainable("lora_b:"+name, c.New(ggml.F32, int64(t.cfg.Rank), out), true)
				t.lora[name] = [2]*trainable{a, b}
			}
		}
	}
	L, B := int64(t.L), int64(t.B)
	t.tokens = c.New(ggml.I32, L*B)
	t.pos = c.New(ggml.I32, L)
	t.mask = c.New(ggml.F32, L, L)
	t.targets = c.New(ggml.I32, L*B)
	t.rowWeights = c.New(ggml.F32, L*B)
	t.keep = c.New(ggml.F32, 1)
	t.adamDecay = c.New(ggml.F32, 7)
	t.adamNoDecay = c.New(ggml.F32, 7)
	t.gradScale = c.New(ggml.F32, 1)
	if t.native {
		t.labels = c.New(ggml.F32, int64(t.V), L*B)
		t.rowMask = c.New(ggml.F32, 1, L*B)
		t.lossScale = c.New(ggml.F32, 1)
	}
	buf, err := t.fwd.Alloc(c)
	if err != nil {
		return err
	}
	t.buf = buf
	for _, s := range specs {
		if t.cfg.Method != "full" {
			break
		}
		v, err := t.base.TensorF32(s.Name)
		if err != nil {
			return err
		}
		t.weights[s.Name].SetF32(v)
	}
	// LoRA: A from N(0, 1/in) seeded by the run's seed, B zero, so the adapted model starts equal to the base.
	rng := rand.New(rand.NewPCG(t.cfg.Seed, 0x10a))
	for _, tr := range t.params {
		tr.m.Zero()
		tr.v.Zero()
		if !tr.acc.Nil() {
			tr.acc.Zero()
		}
		switch {
		case strings.HasPrefix(tr.name, "lora_a:"):
			v := make([]float32, tr.p.Elements())
			std := 1 / math.Sqrt(float64(tr.p.Ne(0)))
			for i := range v {
				v[i] = float32(rng.NormFloat64() * std)
			}
			tr.p.SetF32(v)
		case strings.HasPrefix(tr.name, "lora_b:"):
			tr.p.Zero()
		}
	}
	pos := make([]int32, t.L)
	for i := range pos {
		pos[i] = int32(i)
	}
	t.pos.SetI32(pos)
	t.mask.SetF32(llm.CausalMask(0, t.L, nil))
	return nil
}

// linear is the forward pass's matrix product: with LoRA, W·x + (alpha/r)·B·(A·x). The batch is folded
// into one [in, L·B] matrix first, so the weight's gradient is one product over all L·B tokens (ggml's
// backward of a 3-D product makes one per sequence and sums them).
func (t *trainer) linear(c *ggml.Context) llm.Linear {
	scale := float32(t.cfg.Alpha / float64(max(t.cfg.Rank, 1)))
	return func(layer int, p llm.Proj, w, x ggml.Tensor) ggml.Tensor {
		shape := x.Shape()
		x2 := c.Reshape2D(x, x.Ne(0), x.Elements()/x.Ne(0))
		y := c.MulMat(w, x2)
		if ad, ok := t.lora[llm.ProjTensorName(layer, p)]; ok {
			y = c.Add(y, c.Scale(c.MulMat(ad[1].p, c.MulMat(ad[0].p, x2)), scale))
		}
		switch len(shape) {
		case 3:
			return c.Reshape3D(y, y.Ne(0), shape[1], shape[2])
		case 4:
			return c.Reshape4D(y, y.Ne(0), shape[1], shape[2], shape[3])
		}
		return y
	}
}

// buildGraphs builds graph A: forward, backward, gradient accumulation (Accum > 1) and the squared gradient
// norm.
func (t *trainer) buildGraphs() error {
	size := 2048 + 400*t.model.Layers + 16*len(t.params)
	t.gctx = ggml.NewContext(4*size, 2*size, true)
	c := t.gctx
	t.gA = c.NewGraph(size, true)
	w := llm.WeightsFrom(t.model, t.weights)
	if t.cfg.Method != "full" {
		f32Products(c, &w)
	}
	logits := llm.Forward(c, t.gA, t.model, &w, llm.Batch{Tokens: t.tokens, Pos: t.pos, Mask: t.mask, L: t.L, B: t.B, Linear: t.linear(c)})
	logits2 := c.Reshape2D(logits, int64(t.V), int64(t.L*t.B))
	if t.native {
		// ggml's mean cross-entropy over all L·B rows: rows not learned are multiplied by 0 (a zero gradient
		// whatever their uniform label; nextBatch takes their log V out of the loss), and lossScale turns the
		// mean over L·B rows into the mean over the learned ones.
		t.loss = c.Mul(c.CrossEntropy(c.Mul(logits2, t.rowMask), t.labels), t.lossScale)
	} else {
		// Mean loss over the learned rows: each has weight 1/learned, the others 0 (no loss, zero gradient).
		// The fused kernel needs no dense [V, L·B] labels and no masking multiply over the logits.
		loss, err := c.CrossEntropyRows(logits2, t.targets, t.rowWeights)
		if err != nil {
			return err
		}
		t.loss = loss
	}
	t.loss.SetLoss()
	t.loss.SetOutput()
	t.gA.Expand(t.loss)
	t.gA.BuildBackward(c)
	if !t.native {
		t.gA.FuseCrossEntropy(c)
	}
	for _, r := range c.NormOutputs() {
		if g := t.gA.Grad(r); !g.Nil() {
			g.SetOutput()
		}
	}
	var norm ggml.Tensor
	outputs := []ggml.Tensor{t.loss}
	for _, tr := range t.params {
		tr.grad = t.gA.Grad(tr.p)
		if tr.grad.Nil() || !tr.grad.Contiguous() || tr.grad.Elements() != tr.p.Elements() {
			return fmt.Errorf("train: parameter %s has no contiguous gradient", tr.name)
		}
		if tr.acc.Nil() {
			// Accum 1: the optimizer reads the gradient where the backward pass wrote it (no copy, no
			// accumulator); as an output its memory is not reused by later nodes.
			tr.accNext = tr.grad
			tr.grad.SetOutput()
			outputs = append(outputs, tr.grad)
		} else {
			tr.accNext = c.Add(c.Mul(tr.acc, t.keep), tr.grad)
			store := c.Cpy(tr.accNext, tr.acc)
			t.gA.Expand(store)
			outputs = append(outputs, store)
		}
		var sq ggml.Tensor
		if t.native {
			sq = c.Sum(c.Sqr(tr.accNext))
		} else {
			sq = c.SumSquares(tr.accNext)
		}
		if norm.Nil() {
			norm = sq
		} else {
			norm = c.Add(norm, sq)
		}
	}
	t.gnorm2 = norm
	t.gnorm2.SetOutput()
	t.gA.Expand(t.gnorm2)
	// ggml's backward of every matrix product is OUT_PROD, a scalar loop on the CPU (about 60 % of a step at
	// 113M parameters). On the CPU the package's GEMM computes every F32 product; what is left (and, on the
	// native path, every OUT_PROD) becomes MUL_MAT of transposed operands, which runs on the blocked kernels.
	if !t.native {
		t.gA.ProductsToGEMM(c)
	}
	t.gA.OutProdToMulMat(c)
	t.gRun = c.GraphOf(2*size, append(outputs, t.gnorm2)...)
	t.lossSeed = t.gA.LossSeed(t.loss)

	return nil
}

// buildOptimizer builds graph B: one AdamW step per trainable from its gradient scaled by gradScale. With
// Accum 1 it reads the backward graph's gradients in place (through aliases, so graph B holds no backward
// node), which needs graph A allocated first.
func (t *trainer) buildOptimizer() error {
	osize := 16 + 4*len(t.params)
	t.octx = ggml.NewContext(3*osize, osize, false)
	o := t.octx
	t.gB = o.NewGraph(osize, false)
	for _, tr := range t.params {
		params := t.adamNoDecay
		if tr.decay {
			params = t.adamDecay
		}
		g := tr.acc
		if g.Nil() {
			var err error
			if g, err = o.Alias(tr.grad); err != nil {
				return fmt.Errorf("train: gradient of %s: %w", tr.name, err)
			}
		}
		if t.native {
			t.gB.Expand(o.AdamWStep(tr.p, o.Mul(g, t.gradScale), tr.m, tr.v, params))
		} else {
			t.gB.Expand(o.AdamWScaled(tr.p, g, tr.m, tr.v, params, t.gradScale))
		}
	}
	return nil
}

// f32Products makes every matrix product of a LoRA forward pass over a stored F16, BF16 or quantized base run
// in F32, as over its dequantized copy: each frozen matrix is converted just before its product (a temporary
// the allocator reuses, never a resident F32 copy). ggml's own products over those types would round the
// activations to the weight's type (BF16, Q8_K), which moved the loss by up to 2e-3 after 5 steps.
func f32Products(c *ggml.Context, w *llm.Weights) {
	cast := func(t ggml.Tensor) ggml.Tensor {
		if t.Nil() || t.Type() == ggml.F32 {
			return t
		}
		return c.Cast(t, ggml.F32)
	}
	w.Output = cast(w.Output)
	for i := range w.Layers {
		for p := range w.Layers[i].Proj {
			w.Layers[i].Proj[p] = cast(w.Layers[i].Proj[p])
		}
	}
}

// shuffle sets the example order of the current epoch: a permutation drawn from (seed, epoch), so the data
// position alone (epoch, cursor) restores it.
func (t *trainer) shuffle() {
	rng := rand.New(rand.NewPCG(t.cfg.Seed, uint64(t.epoch)+0x5eed))
	t.order = rng.Perm(len(t.seqs))
}

// nextBatch fills the inputs with the next B sequences and returns how many tokens are learned and present.
func (t *trainer) nextBatch() (learned, present int) {
	L, B := t.L, t.B
	if t.tokenBuf == nil {
		t.tokenBuf, t.targetBuf, t.weightBuf = make([]int32, L*B), make([]int32, L*B), make([]float32, L*B)
	}
	tokens, targets, weights := t.tokenBuf, t.targetBuf, t.weightBuf
	clear(tokens)
	clear(targets)
	clear(weights)
	for b := 0; b < B; b++ {
		if t.cursor == len(t.order) {
			t.epoch++
			t.cursor = 0
			t.shuffle()
		}
		s := t.seqs[t.order[t.cursor]]
		t.cursor++
		for j := 0; j < L; j++ {
			row := b*L + j
			if j < len(s.input) {
				tokens[row] = s.input[j]
				present++
			}
			if j < len(s.input) && s.learn[j] {
				targets[row] = s.target[j]
				weights[row] = 1
				learned++
			}
		}
	}
	if learned > 0 {
		inv := 1 / float32(learned)
		for i, w := range weights {
			weights[i] = w * inv
		}
	}
	t.tokens.SetI32(tokens)
	if t.native {
		t.setLabels(weights)
	} else {
		t.targets.SetI32(targets)
		t.rowWeights.SetF32(weights)
	}
	return learned, present
}

// setLabels fills the native path's dense labels (one-hot at the target of a learned row, uniform 1/V
// elsewhere), the row mask and the loss scale L·B/learned from the targets and row weights nextBatch made.
func (t *trainer) setLabels(weights []float32) {
	V, R := t.V, t.L*t.B
	if t.labelBuf == nil {
		t.labelBuf, t.rowMaskBuf = make([]float32, V*R), make([]float32, R)
	}
	uniform := 1 / float32(V)
	learned := 0
	for r := 0; r < R; r++ {
		lab := t.labelBuf[r*V : (r+1)*V]
		if weights[r] == 0 {
			for k := range lab {
				lab[k] = uniform
			}
			t.rowMaskBuf[r] = 0
			continue
		}
		clear(lab)
		lab[t.targetBuf[r]] = 1
		t.rowMaskBuf[r] = 1
		learned++
	}
	scale := float32(0)
	if learned > 0 {
		scale = float32(R) / float32(learned)
	}
	t.labels.SetF32(t.labelBuf)
	t.rowMask.SetF32(t.rowMaskBuf)
	t.lossScale.SetF32([]float32{scale})
	t.learned = learned
}

// compute runs the forward and backward graph once on the current inputs.
func (t *trainer) compute() error {
	t.lossSeed.SetF32([]float32{1})
	return t.fwd.Compute(t.gRun)
}

// lossValue is the computed loss: the mean over the learned rows. On the native path ggml's mean also counted
// log V for each row not learned (uniform label over all-zero logits), scaled by L·B/learned: taken out here.
func (t *trainer) lossValue() float64 {
	loss := float64(t.loss.F32()[0])
	if t.native && t.learned > 0 {
		pad := float64(t.L*t.B - t.learned)
		loss -= pad * math.Log(float64(t.V)) / float64(t.learned)
	}
	return loss
}

// trainStep runs Accum micro-batches and one optimizer step; it returns the step's mean loss.
func (t *trainer) trainStep() (float64, int64, error) {
	var lossSum float64
	var tokens int64
	for micro := 0; micro < t.cfg.Accum; micro++ {
		_, present := t.nextBatch()
		tokens += int64(present)
		keep := float32(1)
		if micro == 0 {
			keep = 0
		}
		t.keep.SetF32([]float32{keep})
		if err := t.compute(); err != nil {
			return 0, tokens, err
		}
		loss := t.lossValue()
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return 0, tokens, fmt.Errorf("%w at step %d (loss %v)", ErrDiverged, t.step+1, loss)
		}
		lossSum += loss
	}
	norm := math.Sqrt(float64(t.gnorm2.F32()[0])) / float64(t.cfg.Accum)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return 0, tokens, fmt.Errorf("%w at step %d (gradient norm %v)", ErrDiverged, t.step+1, norm)
	}
	scale := 1 / float64(t.cfg.Accum)
	if c := *t.cfg.ClipNorm; c > 0 && norm > c {
		scale *= c / norm
	}
	t.gradScale.SetF32([]float32{float32(scale)})
	lr := t.cfg.lrAt(t.step)
	n := float64(t.step + 1)
	b1, b2 := t.cfg.Beta1, t.cfg.Beta2
	adam := []float32{float32(lr), float32(b1), float32(b2), float32(t.cfg.Eps), float32(t.cfg.WeightDecay),
		float32(1 / (1 - math.Pow(b1, n))), float32(1 / (1 - math.Pow(b2, n)))}
	t.adamDecay.SetF32(adam)
	adam[4] = 0
	t.adamNoDecay.SetF32(adam)
	if err := t.opt.Compute(t.gB); err != nil {
		return 0, tokens, err
	}
	t.step++
	return lossSum / float64(t.cfg.Accum), tokens, nil
}

// result builds the trained model: full fine-tunes take the trained weights, LoRA merges W + (alpha/r)·B·A
// into each adapted weight (dequantized, added, quantized again for a quantized base; the names of those
// are returned) and copies the other tensors unchanged. Weights return to the base's types.
func (t *trainer) result() (*llm.Model, []string, error) {
	data := map[string][]byte{}
	specs := t.base.Specs()
	scale := float32(t.cfg.Alpha / float64(max(t.cfg.Rank, 1)))
	var requantized []string
	for _, s := range specs {
		ad, adapted := t.lora[s.Name]
		if t.cfg.Method != "full" && !adapted {
			b, err := t.base.TensorData(s.Name)
			if err != nil {
				return nil, nil, err
			}
			data[s.Name] = b
			continue
		}
		var w []float32
		if adapted {
			var err error
			if w, err = t.base.TensorF32(s.Name); err != nil {
				return nil, nil, err
			}
			mergeLoRA(w, ad[0].p.F32(), ad[1].p.F32(), int(s.Shape[0]), int(s.Shape[1]), t.cfg.Rank, scale)
			if ggml.IsQuantized(ggml.Type(s.Type)) {
				requantized = append(requantized, s.Name)
			}
		} else {
			w = t.weights[s.Name].F32()
		}
		b := make([]byte, ggml.RowSize(ggml.Type(s.Type), int64(len(w))))
		if err := ggml.FromFloat32(ggml.Type(s.Type), w, b, s.Shape[0]); err != nil {
			return nil, nil, fmt.Errorf("train: tensor %s: %w", s.Name, err)
		}
		data[s.Name] = b
	}
	bo := t.base.Backend().Options()
	m, err := llm.FromHost(t.model, t.base.Tok, t.base.ExtraMetadata(), specs, data, llm.Options{Threads: bo.Threads, Device: bo.Device, CUDALibrary: bo.CUDALibrary, Window: t.base.Window()})
	return m, requantized, err
}

// mergeLoRA adds scale·B·A to w. In ggml order w is [in, out] (out rows of in values), A is [in, r] and
// B is [r, out], so w[o][i] += scale · Σ_k B[o][k]·A[k][i].
func mergeLoRA(w, a, b []float32, in, out, r int, scale float32) {
	for o := 0; o < out; o++ {
		row := w[o*in : (o+1)*in]
		for k := 0; k < r; k++ {
			f := scale * b[o*r+k]
			if f == 0 {
				continue
			}
			ak := a[k*in : (k+1)*in]
			for i := range row {
				row[i] += f * ak[i]
			}
		}
	}
}

// Pretrain creates a tiny byte-level llama of shape cfg from nothing (weights from seed) and trains it on
// texts with the given hyperparameters: the start of every model the demo and the tests use.
func Pretrain(ctx context.Context, cfg llm.Config, texts []string, c Config, o llm.Options, progress func(Progress)) (*llm.Model, Result, error) {
	base, err := llm.NewTiny(cfg, c.Seed, o)
	if err != nil {
		return nil, Result{}, err
	}
	defer base.Close()
	data := make([]Example, 0, len(texts))
	for _, t := range texts {
		if t != "" {
			data = append(data, Example{Text: t})
		}
	}
	return Run(ctx, Job{Base: base, Data: data, Config: c, Progress: progress})
}
