package merge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sync"
)

// Options tune how a merge runs; none of them changes the output bytes.
type Options struct {
	Parallelism   int                   // worker goroutines; 0 = number of CPUs
	Progress      func(done, total int) // called after each output tensor is written
	MaxShardBytes int64                 // safetensors folder output: shard above this size; 0 = 5 GB like transformers
	NoSync        bool                  // skip fsync before the final rename (benchmarks)
	ChunkElements int                   // elements per work unit; 0 = 256Ki
	// CacheBytes, when > 0, keeps up to that many bytes of the parents' raw tensor
	// data between the passes of slerp and the magnitude methods, so each tensor is
	// read from disk once. Off by default: when the parents sit in the page cache,
	// re-reading is cheaper than a cache (measured: +80% CPU with the cache). Turn it
	// on for parents on slow storage; about twice the largest tensor is enough.
	CacheBytes int64
}

// Result describes the written child.
type Result struct {
	SHA256  string            `json:"sha256"` // of the file; for a folder, of its manifest ("<sha256>  <name>\n" per file, sorted)
	Bytes   int64             `json:"bytes"`  // total bytes written
	Tensors int               `json:"tensors"`
	Files   map[string]string `json:"files,omitempty"` // folder output: file name -> sha256
}

const defaultChunk = 1 << 18

// noFuse turns the fused kernels off (tests compare both paths).
var noFuse bool

// Merge merges the models at inputs (GGUF files, or safetensors files/folders) into
// out as spec says. A .gguf out writes GGUF; a .safetensors out writes one file; any
// other out is a Hugging Face folder (shards + index when large, config and
// tokenizer files copied from the base). The output appears under out only when
// complete.
func Merge(ctx context.Context, inputs []string, out string, spec Spec, opts Options) (Result, error) {
	if err := spec.Validate(len(inputs)); err != nil {
		return Result{}, err
	}
	models := make([]*inputModel, 0, len(inputs))
	defer func() {
		for _, m := range models {
			m.Close()
		}
	}()
	for _, p := range inputs {
		m, err := openInput(p)
		if err != nil {
			return Result{}, err
		}
		models = append(models, m)
	}
	if err := checkVocab(models); err != nil {
		return Result{}, err
	}
	pl, err := buildPlan(&spec, models)
	if err != nil {
		return Result{}, err
	}
	if (pl.ref.format == "gguf") != isGGUFPath(out) {
		return Result{}, fmt.Errorf("out %s: the parents are %s; write the child in the same format", out, pl.ref.format)
	}
	chunk := int64(opts.ChunkElements)
	if chunk <= 0 {
		chunk = defaultChunk
	}
	chunk = (chunk + 255) / 256 * 256 // whole blocks of every quantized type
	jobs := make([]*tensorJob, len(pl.tensors))
	for i, o := range pl.tensors {
		if jobs[i], err = newJob(&spec, o, chunk); err != nil {
			return Result{}, err
		}
	}
	par := opts.Parallelism
	if par <= 0 {
		par = runtime.NumCPU()
	}
	var sk sink
	if pl.ref.format == "gguf" {
		sk, err = newGGUFSink(out, pl, opts)
	} else {
		sk, err = newSafetensorsSink(out, pl, opts)
	}
	if err != nil {
		return Result{}, err
	}
	var cache *tensorCache
	if opts.CacheBytes > 0 {
		cache = newTensorCache(opts.CacheBytes)
	}
	if err := run(ctx, jobs, par, sk, opts.Progress, cache); err != nil {
		sk.abort()
		return Result{}, err
	}
	res, err := sk.commit()
	if err != nil {
		sk.abort()
		return Result{}, err
	}
	res.Tensors = len(jobs)
	return res, nil
}

// checkVocab: GGUF parents must share their token list, or token rows would be
// averaged across different tokens.
func checkVocab(models []*inputModel) error {
	if models[0].format != "gguf" {
		return nil
	}
	ref, _ := models[0].gg.Lookup("tokenizer.ggml.tokens")
	for _, m := range models[1:] {
		if m.gg == nil {
			continue
		}
		v, _ := m.gg.Lookup("tokenizer.ggml.tokens")
		if !reflect.DeepEqual(ref, v) {
			return fmt.Errorf("vocabulary differs: tokenizer.ggml.tokens of %s and %s are not the same", models[0].path, m.path)
		}
	}
	return nil
}

type jobKind int

const (
	kindWeighted jobKind = iota // linear, passthrough, and slerp once its coefficients are known
	kindSlerp
	kindGTA
	kindStock
	kindRawCopy
)

// tensorJob is one output tensor with its resolved parameters.
type tensorJob struct {
	o       *outTensor
	kind    jobKind
	weights []float32 // kindWeighted
	slerpT  float64
	gta     *gtaConfig
	sparse  sparsifyKind
	dens    []float64 // per non-base model (magnitude windows)
	gamma   []float64
	others  []int // source indices of the non-base models
	chunk   int64
	nChunks int
	// cache: the sources' raw bytes, source k at cacheOff[k]; filled by the first pre-pass
	cache     []byte
	cacheOff  []int64
	cacheFull bool
}

func (j *tensorJob) span(c int) (start, n int64) {
	start = int64(c) * j.chunk
	return start, min(j.chunk, j.o.elems-start)
}

// param resolves a parameter for input model (or global when model < 0).
func (s *Spec) param(model int, name string, o *outTensor, def float64) float64 {
	var p Param
	var ok bool
	if model < 0 {
		p, ok = s.Global[name]
	} else if model < len(s.PerModel) {
		p, ok = s.PerModel[model][name]
	}
	if !ok {
		return def
	}
	if v, ok := p.value(o.class, o.pos); ok {
		return v
	}
	return def
}

func newJob(spec *Spec, o *outTensor, chunk int64) (*tensorJob, error) {
	mi := methods[spec.Method]
	j := &tensorJob{o: o}
	if spec.Method == "model_stock" && o.rowLen > 0 {
		rows := max(chunk/o.rowLen, 1)
		chunk = rows * o.rowLen
	}
	j.chunk = max(chunk, 1)
	j.nChunks = max(1, int((o.elems+j.chunk-1)/j.chunk)) // an empty tensor still takes one (empty) chunk
	def := func(name string) float64 { return mi.perModel[name].def }
	gdef := func(name string) float64 { return mi.global[name].def }
	for _, s := range o.srcs {
		if !s.typ.isFloat() && spec.Method != "passthrough" && s.typ.block > 1 && j.chunk%s.typ.block != 0 {
			return nil, fmt.Errorf("tensor %q: chunk does not fit %s blocks", o.name, s.typ.name)
		}
	}
	switch spec.Method {
	case "passthrough":
		scale := spec.param(o.model[0], "scale", o, 1)
		if scale == 1 && spec.OutType == "" && !o.srcs[0].typ.isFloat() {
			o.typ = o.srcs[0].typ // a quantized layer passes through unchanged
			j.kind = kindRawCopy
			return j, nil
		}
		j.kind, j.weights = kindWeighted, []float32{float32(scale)}
	case "linear":
		var sum float64
		w := make([]float64, len(o.srcs))
		for k, m := range o.model {
			w[k] = spec.param(m, "weight", o, 1)
			sum += w[k]
		}
		if spec.param(-1, "normalize", o, 1) != 0 {
			if math.Abs(sum) < 1e-8 {
				return nil, fmt.Errorf("tensor %q: linear weights sum to %g; cannot normalise", o.name, sum)
			}
			for k := range w {
				w[k] /= sum
			}
		}
		j.kind = kindWeighted
		for _, v := range w {
			j.weights = append(j.weights, float32(v))
		}
	case "slerp":
		j.kind, j.slerpT = kindSlerp, spec.param(-1, "t", o, 0)
		// chunks start on dot-product blocks, so every block lies in one chunk
		j.chunk = (j.chunk + dotBlock - 1) / dotBlock * dotBlock
		j.nChunks = max(1, int((o.elems+j.chunk-1)/j.chunk))
	case "model_stock":
		j.kind = kindStock
		for k := range o.srcs {
			if k != o.base {
				j.others = append(j.others, k)
			}
		}
	default: // the task-vector family
		j.kind, j.sparse = kindGTA, mi.sparsify
		c := &gtaConfig{consensus: mi.consensus, lambda: float32(spec.param(-1, "lambda", o, gdef("lambda")))}
		c.normalize = spec.param(-1, "normalize", o, gdef("normalize")) != 0
		var wsum float64
		for k, m := range o.model {
			if k == o.base {
				continue
			}
			j.others = append(j.others, k)
			w := spec.param(m, "weight", o, def("weight"))
			wsum += w
			d := 1.0
			if mi.sparsify != sparsifyNone {
				d = spec.param(m, "density", o, def("density"))
			}
			g := 0.0
			if mi.sparsify == sparsifyOutliers {
				g = spec.param(m, "gamma", o, def("gamma"))
			}
			scale := float32(1)
			if mi.rescale && d < 1 {
				scale = float32(1 / d)
			}
			c.weight = append(c.weight, float32(w))
			c.scale = append(c.scale, scale)
			c.density = append(c.density, float32(d))
			c.keys = append(c.keys, maskKey(spec.Seed, o.name, m))
			j.dens = append(j.dens, d)
			j.gamma = append(j.gamma, g)
		}
		c.divisor = float32(wsum)
		if math.Abs(wsum) < 1e-8 {
			c.divisor = 1
		}
		c.random = mi.sparsify == sparsifyRandom
		c.window = mi.sparsify == sparsifyMagnitude || mi.sparsify == sparsifyOutliers
		j.gta = c
	}
	return j, nil
}

// scratch is one worker's reusable buffers.
type scratch struct {
	raw   []byte
	in    [][]float32
	out   []float32
	delta []float32
	raws  [][]byte // fused path: one raw chunk per source
	rc    rawChunk
}

func grow(b []float32, n int64) []float32 {
	if int64(cap(b)) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// load decodes sources idx (all when nil) of chunk c into s.in.
func (s *scratch) load(j *tensorJob, c int) (int64, int64, error) {
	start, n := j.span(c)
	for len(s.in) < len(j.o.srcs) {
		s.in = append(s.in, nil)
	}
	for k, src := range j.o.srcs {
		s.in[k] = grow(s.in[k], n)
		if j.cache != nil {
			lo := j.cacheOff[k] + src.typ.bytesFor(start)
			raw := j.cache[lo : lo+src.typ.bytesFor(n)]
			if j.cacheFull {
				if err := src.typ.decode(raw, s.in[k]); err != nil {
					return 0, 0, fmt.Errorf("%s: tensor %q: %v", src.path, src.name, err)
				}
				continue
			}
			if _, err := src.readChunk(start, s.in[k], raw); err != nil {
				return 0, 0, err
			}
			continue
		}
		var err error
		if s.raw, err = src.readChunk(start, s.in[k], s.raw); err != nil {
			return 0, 0, err
		}
	}
	return start, n, nil
}

var bufPool sync.Pool

func getBuf(n int64) []byte {
	if p, ok := bufPool.Get().(*[]byte); ok && int64(cap(*p)) >= n {
		return (*p)[:n]
	}
	return make([]byte, n)
}

func putBuf(b []byte) { bufPool.Put(&b) }

// compute produces the output bytes of chunk c.
func compute(j *tensorJob, c int, s *scratch) ([]byte, error) {
	o := j.o
	if j.kind == kindRawCopy {
		start, n := j.span(c)
		src := o.srcs[0]
		b := getBuf(src.typ.bytesFor(n))
		if _, err := src.r.ReadAt(b, src.offset+src.typ.bytesFor(start)); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %v", src.path, src.name, err)
		}
		return b, nil
	}
	if (j.kind == kindWeighted || j.kind == kindGTA) && fusable(j) && !noFuse {
		if b, ok, err := computeFused(j, c, s); err != nil || ok {
			return b, err
		}
	}
	start, n, err := s.load(j, c)
	if err != nil {
		return nil, err
	}
	s.out = grow(s.out, n)
	in := s.in[:len(o.srcs)]
	switch j.kind {
	case kindWeighted:
		weightedSum(in, j.weights, s.out)
	case kindGTA:
		models := make([][]float32, len(j.others))
		for k, idx := range j.others {
			models[k] = in[idx]
		}
		if j.gta.consensus {
			s.delta = grow(s.delta, int64(len(models))*n)
		}
		gtaChunk(in[o.base], models, j.gta, start, s.out, s.delta)
	case kindStock:
		models := make([][]float32, len(j.others))
		for k, idx := range j.others {
			models[k] = in[idx]
		}
		modelStockChunk(in[o.base], models, int(o.rowLen), s.out)
	default:
		return nil, fmt.Errorf("tensor %q: internal error: job kind %d not prepared", o.name, j.kind)
	}
	b := getBuf(o.typ.bytesFor(n))
	if err := encodeFloat(o.typ.st, s.out, b); err != nil {
		return nil, fmt.Errorf("tensor %q: %v", o.name, err)
	}
	return b, nil
}

// prepState is the pre-pass goroutine's memory, kept from tensor to tensor: one
// scratch per worker, slerp's block sums and a histogram total. Fresh ones per
// tensor were megabytes of garbage per tensor, so the heap's peak (and the peak RSS)
// swung with the collector's timing.
type prepState struct {
	workers []*scratch
	dots    []float64
	tot     []uint64
}

// scratch returns worker w's scratch (nil ps: a fresh one).
func (ps *prepState) scratch(w int) *scratch {
	if ps == nil {
		return &scratch{}
	}
	for len(ps.workers) <= w {
		ps.workers = append(ps.workers, &scratch{})
	}
	return ps.workers[w]
}

// dotSums returns n zeroed block sums.
func (ps *prepState) dotSums(n int64) []float64 {
	if int64(cap(ps.dots)) < n {
		ps.dots = make([]float64, n)
	}
	ps.dots = ps.dots[:n]
	clear(ps.dots)
	return ps.dots
}

// total returns histBins zeroed counters.
func (ps *prepState) total() []uint64 {
	if ps.tot == nil {
		ps.tot = make([]uint64, histBins)
	}
	clear(ps.tot)
	return ps.tot
}

// forChunks runs fn over every chunk of j on par goroutines, each with its own scratch.
func forChunks(ctx context.Context, j *tensorJob, par int, ps *prepState, fn func(w int, s *scratch, c int) error) error {
	return forRange(ctx, j.nChunks, par, ps, fn)
}

// forRange runs fn(w, s, i) for i in [0, count) on par goroutines, each with its own
// scratch (worker w's of ps; ps is used by one forRange at a time).
func forRange(ctx context.Context, count, par int, ps *prepState, fn func(w int, s *scratch, c int) error) error {
	par = max(1, min(par, count))
	var next int
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := 0; w < par; w++ {
		wg.Add(1)
		s := ps.scratch(w)
		go func(w int) {
			defer wg.Done()
			for {
				mu.Lock()
				c := next
				next++
				stop := first != nil || c >= count
				mu.Unlock()
				if stop {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(w, s, c)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return first
}

// prepare runs a job's pre-passes: slerp's dot products, magnitude thresholds.
func prepare(ctx context.Context, j *tensorJob, par int, cache *tensorCache, ps *prepState) error {
	if j.kind == kindSlerp || (j.kind == kindGTA && j.gta.window) {
		if err := cache.take(ctx, j); err != nil {
			return err
		}
	}
	switch {
	case j.kind == kindSlerp:
		// One (a·b, a·a, b·b) per dotBlock of the tensor, added in tensor order at the
		// end: the same sums whatever the chunking and parallelism.
		per := ps.dotSums(3 * ((j.o.elems + dotBlock - 1) / dotBlock))
		err := forChunks(ctx, j, par, ps, func(_ int, s *scratch, c int) error {
			start, n := j.span(c)
			res := per[3*(start/dotBlock) : 3*((start+n+dotBlock-1)/dotBlock)]
			if fusable(j) && !noFuse {
				ok, err := fusedDots(j, c, s, res)
				if err != nil || ok {
					return err
				}
			}
			if _, _, err := s.load(j, c); err != nil {
				return err
			}
			dotBlocks(s.in[0], s.in[1], res)
			return nil
		})
		if err != nil {
			return err
		}
		j.cacheFull = j.cache != nil
		ab, aa, bb := sumDotBlocks(per)
		s0, s1 := slerpCoeffs(j.slerpT, ab, aa, bb)
		j.kind, j.weights = kindWeighted, []float32{float32(s0), float32(s1)}
	case j.kind == kindGTA && j.gta.window:
		return prepareWindows(ctx, j, par, ps)
	}
	return nil
}

func prepareWindows(ctx context.Context, j *tensorJob, par int, ps *prepState) error {
	m := len(j.others)
	c := j.gta
	c.lo, c.hi = make([]uint32, m), make([]uint32, m)
	var queries []*rankQuery
	loQ, hiQ := make([]*rankQuery, m), make([]*rankQuery, m)
	for k := 0; k < m; k++ {
		loK, hiK, loF, hiF, _ := windowFor(j.sparse, j.dens[k], j.gamma[k], j.o.elems)
		c.lo[k], c.hi[k] = loF, hiF
		if loK > 0 {
			loQ[k] = &rankQuery{model: k, k: loK}
			queries = append(queries, loQ[k])
		}
		if hiK > 0 {
			hiQ[k] = &rankQuery{model: k, k: hiK}
			queries = append(queries, hiQ[k])
		}
	}
	if len(queries) == 0 {
		return nil
	}
	setWindows := func() {
		for k := 0; k < m; k++ {
			if loQ[k] != nil {
				c.lo[k] = loQ[k].bits
			}
			if hiQ[k] != nil {
				c.hi[k] = hiQ[k].bits
			}
		}
	}
	if ok, err := bracketSelect(ctx, j, par, ps, queries); err != nil || ok {
		setWindows()
		return err
	}
	base := j.o.base
	par = min(par, j.nChunks)
	// pass one: high halves
	hists := make([][]*[histBins]uint32, par)
	for w := range hists {
		hists[w] = make([]*[histBins]uint32, m)
		for k := range hists[w] {
			h, free := newCounts(histBins)
			defer free()
			hists[w][k] = (*[histBins]uint32)(h)
		}
	}
	fuse := fusable(j) && !noFuse
	allModels, zeros := make([]int, m), make([]uint32, m)
	for k := range allModels {
		allModels[k] = k
	}
	err := forChunks(ctx, j, par, ps, func(w int, s *scratch, ch int) error {
		if fuse {
			if ok, err := fusedHist(j, ch, s, false, allModels, zeros, hists[w]); err != nil || ok {
				return err
			}
		}
		if _, _, err := s.load(j, ch); err != nil {
			return err
		}
		for k, idx := range j.others {
			histHigh(s.in[base], s.in[idx], hists[w][k])
		}
		return nil
	})
	if err != nil {
		return err
	}
	j.cacheFull = j.cache != nil
	for _, q := range queries {
		tot := ps.total()
		for w := range hists {
			for b, v := range hists[w][q.model] {
				tot[b] += uint64(v)
			}
		}
		q.bin, q.rest = pickRank(tot, q.k)
	}
	// pass two: low halves inside each needed bin
	lows := make([][]*[histBins]uint32, par)
	for w := range lows {
		lows[w] = make([]*[histBins]uint32, len(queries))
		for i := range lows[w] {
			h, free := newCounts(histBins)
			defer free()
			lows[w][i] = (*[histBins]uint32)(h)
		}
	}
	qModels, qBins := make([]int, len(queries)), make([]uint32, len(queries))
	for i, q := range queries {
		qModels[i], qBins[i] = q.model, q.bin
	}
	err = forChunks(ctx, j, par, ps, func(w int, s *scratch, ch int) error {
		if fuse {
			if ok, err := fusedHist(j, ch, s, true, qModels, qBins, lows[w]); err != nil || ok {
				return err
			}
		}
		if _, _, err := s.load(j, ch); err != nil {
			return err
		}
		for i, q := range queries {
			histLow(s.in[base], s.in[j.others[q.model]], q.bin, lows[w][i])
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, q := range queries {
		t := ps.total()
		for w := range lows {
			for b, v := range lows[w][i] {
				t[b] += uint64(v)
			}
		}
		lo, _ := pickRank(t, q.rest)
		q.bits = q.bin<<16 | lo
	}
	setWindows()
	return nil
}

type chunkResult struct {
	b   []byte
	err error
}

type slot struct {
	j  *tensorJob
	c  int
	ch chan chunkResult
}

// run computes every chunk on par workers and hands them to the sink in order.
// At most about 2·par chunks are in flight, so memory does not grow with the model.
func run(ctx context.Context, jobs []*tensorJob, par int, sk sink, progress func(done, total int), cache *tensorCache) error {
	ctx, cancel := context.WithCancelCause(ctx)
	var pwg sync.WaitGroup
	defer func() { // stop and wait for the pre-pass goroutine before the inputs close
		cancel(nil)
		pwg.Wait()
	}()
	order := make(chan slot, 2*par)
	tasks := make(chan slot)
	// The pre-passes run ahead of the tensors being computed and written, as far as
	// they get: a prepared job holds only its coefficients or windows (a tensor cache,
	// when on, bounds itself). With one tensor of look-ahead the writer sat idle while
	// a large tensor after a small one (q_proj after a norm, the embedding, lm_head)
	// was prepared.
	prepared := make(chan *tensorJob, len(jobs))
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		defer close(prepared)
		ps := &prepState{}
		for _, j := range jobs {
			if err := prepare(ctx, j, par, cache, ps); err != nil {
				cancel(err)
				return
			}
			select {
			case prepared <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { // feeder: the chunks of the prepared tensors, in output order
		defer close(tasks)
		defer close(order)
		for j := range prepared {
			for c := 0; c < j.nChunks; c++ {
				s := slot{j: j, c: c, ch: make(chan chunkResult, 1)}
				select {
				case order <- s:
				case <-ctx.Done():
					return
				}
				select {
				case tasks <- s:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := &scratch{}
			for t := range tasks {
				if err := ctx.Err(); err != nil {
					t.ch <- chunkResult{err: err}
					continue
				}
				b, err := compute(t.j, t.c, sc)
				t.ch <- chunkResult{b, err}
			}
		}()
	}
	done := 0
	for s := range order {
		var r chunkResult
		select {
		case r = <-s.ch:
		case <-ctx.Done():
			r.err = context.Cause(ctx)
		}
		if r.err == nil {
			r.err = sk.write(s.j.o, r.b)
			putBuf(r.b)
		}
		if r.err != nil {
			cancel(r.err)
			break
		}
		if s.c == s.j.nChunks-1 {
			cache.give(s.j)
			done++
			if progress != nil {
				progress(done, len(jobs))
			}
		}
	}
	for range order { // let the feeder finish after a failure
	}
	wg.Wait()
	if done == len(jobs) {
		return nil
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return errors.New("merge stopped before every tensor was written")
}
