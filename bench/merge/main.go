// Command merge benchmarks EvoMerge's streaming merges against the streaming floor
// (read the parents, write a child of the same size, no arithmetic) and a PyTorch
// reference of the same methods, on generated ~1 GB F16 llama-shaped models.
//
//	go run ./bench/merge -dir /tmp/evomerge-bench-merge
//
// Every measured step runs as a child process so its wall time and peak RSS are its
// own. Subcommands used for that: gen, floor, merge.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"hash"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/merge"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// Model shape: ~491M parameters, ~0.98 GB in F16. The largest tensor is the
// embedding (32000 x 2048 = 131 MB in F16).
// BENCH_MERGE_SMALL=1 shrinks the models to a few MB for a quick smoke run
// (=medium: ~140 MB each).
var dim, ffn, vocab, layers int64 = 2048, 5632, 32000, 7

func init() {
	switch os.Getenv("BENCH_MERGE_SMALL") {
	case "":
	case "medium": // ~140 MB per model, for tuning
		dim, ffn, vocab, layers = 1024, 2816, 16000, 3
	default:
		dim, ffn, vocab, layers = 256, 704, 4000, 2
	}
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "gen":
			check(gen(os.Args[2]))
			return
		case "floor":
			check(floor(os.Args[2], os.Args[3:]))
			return
		case "merge":
			check(runMerge(os.Args[2], os.Args[3]))
			return
		}
	}
	dir := flag.String("dir", filepath.Join(os.TempDir(), "evomerge-bench-merge"), "work folder (models are generated once and kept)")
	py := flag.String("python", "/usr/bin/python3", "python with torch for the reference")
	methods := flag.String("methods", "linear,slerp,ties,dare_ties", "methods to run")
	noTorch := flag.Bool("no-torch", false, "skip the PyTorch reference (quick reruns of the Go side)")
	reps := flag.Int("reps", 3, "runs of floor and merge per method, alternated; the medians are compared")
	flag.Parse()
	if *noTorch {
		*py = ""
	}
	check(bench(*dir, *py, strings.Split(*methods, ","), max(*reps, 1)))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-merge:", err)
		os.Exit(1)
	}
}

type tensorSpec struct {
	name  string
	shape []int64
}

func modelTensors() []tensorSpec {
	ts := []tensorSpec{{"model.embed_tokens.weight", []int64{vocab, dim}}}
	for l := int64(0); l < layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			tensorSpec{p + "input_layernorm.weight", []int64{dim}},
			tensorSpec{p + "self_attn.q_proj.weight", []int64{dim, dim}},
			tensorSpec{p + "self_attn.k_proj.weight", []int64{dim, dim}},
			tensorSpec{p + "self_attn.v_proj.weight", []int64{dim, dim}},
			tensorSpec{p + "self_attn.o_proj.weight", []int64{dim, dim}},
			tensorSpec{p + "post_attention_layernorm.weight", []int64{dim}},
			tensorSpec{p + "mlp.gate_proj.weight", []int64{ffn, dim}},
			tensorSpec{p + "mlp.up_proj.weight", []int64{ffn, dim}},
			tensorSpec{p + "mlp.down_proj.weight", []int64{dim, ffn}},
		)
	}
	return append(ts, tensorSpec{"model.norm.weight", []int64{dim}}, tensorSpec{"lm_head.weight", []int64{vocab, dim}})
}

func elems(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// gen writes base, a and b: a and b are the base plus independent fine-tune-like deltas.
func gen(dir string) error {
	ts := modelTensors()
	infos := make([]safetensors.TensorInfo, len(ts))
	for i, t := range ts {
		infos[i] = safetensors.TensorInfo{Name: t.name, DType: safetensors.F16, Shape: t.shape}
	}
	names := []string{"base", "a", "b"}
	files := make([]*os.File, 3)
	writers := make([]*safetensors.Writer, 3)
	for i, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			return err
		}
		os.WriteFile(filepath.Join(dir, n, "config.json"), []byte(fmt.Sprintf(`{"architectures": ["LlamaForCausalLM"], "hidden_size": %d, "num_hidden_layers": %d, "vocab_size": %d, "torch_dtype": "float16"}`+"\n", dim, layers, vocab)), 0o644)
		f, err := os.Create(filepath.Join(dir, n, "model.safetensors.tmp"))
		if err != nil {
			return err
		}
		files[i] = f
		if writers[i], err = safetensors.NewWriter(f, map[string]string{"format": "pt"}, infos); err != nil {
			return err
		}
	}
	r := rand.New(rand.NewPCG(2026, 11))
	const chunk = 1 << 20
	base, x := make([]float32, chunk), make([]float32, chunk)
	raw := make([]byte, 2*chunk)
	for _, t := range ts {
		n := elems(t.shape)
		norm := strings.Contains(t.name, "norm")
		for s := int64(0); s < n; s += chunk {
			m := min(chunk, n-s)
			for i := range base[:m] {
				if norm {
					base[i] = 1 + float32(r.NormFloat64()*0.05)
				} else {
					base[i] = float32(r.NormFloat64() * 0.02)
				}
			}
			for k := range 3 {
				v := base[:m]
				if k > 0 {
					for i := range v {
						x[i] = base[i] + float32(r.NormFloat64()*0.002)
					}
					v = x[:m]
				}
				if err := ggml.FromFloat32(ggml.F16, v, raw[:2*m], m); err != nil {
					return err
				}
				if err := writers[k].WriteTensor(t.name, raw[:2*m]); err != nil {
					return err
				}
			}
		}
	}
	for i, f := range files {
		if err := writers[i].Close(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(f.Name(), filepath.Join(dir, names[i], "model.safetensors")); err != nil {
			return err
		}
	}
	return nil
}

// floor streams the tensor data of every input in the merge's chunk size and
// writes the first input's bytes to out with a sha256: the same I/O a merge does,
// without decoding, arithmetic or encoding. Each input is read by its own goroutine.
func floor(out string, inputs []string) error {
	models := make([]*safetensors.Model, len(inputs))
	for i, p := range inputs {
		m, err := safetensors.OpenModel(p)
		if err != nil {
			return err
		}
		defer m.Close()
		models[i] = m
	}
	const chunkBytes = 2 << 18 // the merge's default chunk of F16 elements
	type piece struct {
		b   []byte
		err error
	}
	chans := make([]chan piece, len(models))
	free := make([]chan []byte, len(models))
	for i, m := range models {
		chans[i] = make(chan piece, 4)
		free[i] = make(chan []byte, 6)
		for range 6 {
			free[i] <- make([]byte, chunkBytes)
		}
		go func(i int, m *safetensors.Model) {
			defer close(chans[i])
			for _, t := range m.Tensors {
				for off := int64(0); off < t.Size; off += chunkBytes {
					b := (<-free[i])[:min(chunkBytes, t.Size-off)]
					_, err := t.File.ReadAt(b, t.Offset+off)
					chans[i] <- piece{b, err}
					if err != nil {
						return
					}
				}
			}
		}(i, m)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".floor-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := newOverlapHasher(tmp)
	defer w.stop()
	infos := make([]safetensors.TensorInfo, len(models[0].Tensors))
	for i, t := range models[0].Tensors {
		infos[i] = t.TensorInfo
	}
	sw, err := safetensors.NewWriter(w, map[string]string{"format": "pt"}, infos)
	if err != nil {
		return err
	}
	for _, t := range models[0].Tensors {
		for off := int64(0); off < t.Size; off += chunkBytes {
			var first []byte
			for i := range chans {
				p := <-chans[i]
				if p.err != nil {
					return p.err
				}
				if i == 0 {
					first = p.b
				} else {
					free[i] <- p.b[:cap(p.b)]
				}
			}
			if err := sw.WriteTensor(t.Name, first); err != nil {
				return err
			}
			free[0] <- first[:cap(first)]
		}
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	w.stop()
	fmt.Println(hex.EncodeToString(w.h.Sum(nil)))
	return os.Rename(tmp.Name(), out)
}

// overlapHasher hashes each buffer on a second goroutine while the write system
// call copies it, as the merge's own output file does: the floor pays for the
// longer of the two per buffer, not their sum, so it is no slower than the merge's
// writer for reasons that have nothing to do with the arithmetic.
type overlapHasher struct {
	f       *os.File
	h       hash.Hash
	work    chan []byte
	done    chan struct{}
	stopped bool
}

func newOverlapHasher(f *os.File) *overlapHasher {
	o := &overlapHasher{f: f, h: sha256.New(), work: make(chan []byte), done: make(chan struct{})}
	go func() {
		for p := range o.work {
			o.h.Write(p)
			o.done <- struct{}{}
		}
	}()
	return o
}

func (o *overlapHasher) Write(p []byte) (int, error) {
	o.work <- p
	n, err := o.f.Write(p)
	<-o.done
	return n, err
}

func (o *overlapHasher) stop() {
	if !o.stopped {
		o.stopped = true
		close(o.work)
	}
}

// runMerge is what `starter merge` does, without the final fsync (the floor does not sync either).
func runMerge(config, out string) error {
	if p := os.Getenv("BENCH_MERGE_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	inputs, spec, err := merge.LoadMergekit(config)
	if err != nil {
		return err
	}
	opts := merge.Options{NoSync: true}
	if v := os.Getenv("BENCH_MERGE_CACHE"); v != "" { // tuning: bytes of tensor cache
		opts.CacheBytes, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := os.Getenv("BENCH_MERGE_CHUNK"); v != "" { // tuning: elements per work unit
		opts.ChunkElements, _ = strconv.Atoi(v)
	}
	res, err := merge.Merge(context.Background(), inputs, out, spec, opts)
	if err != nil {
		return err
	}
	fmt.Println(res.SHA256)
	return nil
}

var configs = map[string]string{
	"linear": `models:
  - model: a
    parameters: {weight: 0.5}
  - model: b
    parameters: {weight: 0.5}
merge_method: linear
dtype: float16
`,
	"slerp": `models: [{model: a}, {model: b}]
merge_method: slerp
base_model: a
parameters: {t: 0.5}
dtype: float16
`,
	"ties": `models:
  - model: base
  - model: a
    parameters: {weight: 0.5, density: 0.5}
  - model: b
    parameters: {weight: 0.5, density: 0.5}
merge_method: ties
base_model: base
dtype: float16
`,
	"dare_ties": `models:
  - model: base
  - model: a
    parameters: {weight: 0.5, density: 0.5}
  - model: b
    parameters: {weight: 0.5, density: 0.5}
merge_method: dare_ties
base_model: base
dtype: float16
seed: 1
`,
}

type measure struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	rssMiB float64
	out    string
}

// timed runs a child process and returns its wall time and peak RSS.
func timed(name string, args ...string) (measure, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	if err != nil {
		return measure{}, fmt.Errorf("%s %v: %v", name, args, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return measure{wall: wall, cpu: cpu, rssMiB: float64(ru.Maxrss) / 1024, out: strings.TrimSpace(string(out))}, nil
}

// median keeps the median wall and CPU time of repeated runs (and the highest peak RSS
// seen): on a shared VM, writing 1 GB into fresh page-cache pages costs anywhere from
// 0.2 s to 2 s, so a single run of either side says more about the kernel than about
// the merge, and the floor and the merge alternate so both see the same machine.
func median(ms []measure) measure {
	walls := make([]time.Duration, len(ms))
	cpus := make([]time.Duration, len(ms))
	var rss float64
	for i, m := range ms {
		walls[i], cpus[i], rss = m.wall, m.cpu, max(rss, m.rssMiB)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	mid := func(d []time.Duration) time.Duration {
		if len(d)%2 == 1 {
			return d[len(d)/2]
		}
		return (d[len(d)/2-1] + d[len(d)/2]) / 2
	}
	return measure{wall: mid(walls), cpu: mid(cpus), rssMiB: rss, out: ms[len(ms)-1].out}
}

func bench(dir, py string, methods []string, reps int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "b", "model.safetensors")); err != nil {
		fmt.Println("generating base, a, b (F16, ~1 GB each) in", dir)
		if m, err := timed(self, "gen", dir); err != nil {
			return err
		} else {
			fmt.Printf("generated in %.1fs\n", m.wall.Seconds())
		}
	}
	// flush the generator's dirty pages, then warm the page cache, so every
	// contender reads from memory and no write-back runs under a measurement
	syscall.Sync()
	for _, n := range []string{"base", "a", "b"} {
		f, err := os.Open(filepath.Join(dir, n, "model.safetensors"))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, f)
		f.Close()
	}
	var largest int64
	for _, t := range modelTensors() {
		largest = max(largest, elems(t.shape)*2)
	}
	budget := 3*float64(largest)/(1<<20) + 64
	ref := filepath.Join(filepath.Dir(self), "reference.py")
	if _, err := os.Stat(ref); err != nil {
		ref = filepath.Join("bench", "merge", "reference.py")
	}
	fmt.Printf("largest tensor %.0f MiB (F16); RSS budget 3x + 64 MiB = %.0f MiB; %d CPUs\n\n", float64(largest)/(1<<20), budget, runtime.NumCPU())
	fmt.Printf("load average at start: %s\n", loadavg())
	runs := map[string]string{}
	fmt.Printf("%-10s %8s %8s %8s %8s %8s %9s %9s %9s %9s %10s %s\n", "method", "merge_s", "floor_s", "torch_s", "mergeCPU", "floorCPU", "vs_floor", "vs_torch", "rss_MiB", "torch_MiB", "max|diff|", "targets (wall-time ratios)")
	for _, method := range methods {
		cfgText, ok := configs[method]
		if !ok {
			return fmt.Errorf("no benchmark config for %s", method)
		}
		cfg := filepath.Join(dir, method+".yaml")
		if err := os.WriteFile(cfg, []byte(cfgText), 0o644); err != nil {
			return err
		}
		inputs := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
		if method == "ties" || method == "dare_ties" {
			inputs = append([]string{filepath.Join(dir, "base")}, inputs...)
		}
		floorOut := filepath.Join(dir, "floor.safetensors")
		goOut := filepath.Join(dir, method+".go.safetensors")
		var fls, mgs []measure
		var walls []string
		for r := 0; r < reps; r++ { // alternate, so both sides see the same machine state
			f, err := timed(self, append([]string{"floor", floorOut}, inputs...)...)
			if err != nil {
				return err
			}
			os.Remove(floorOut)
			m, err := timed(self, "merge", cfg, goOut)
			if err != nil {
				return err
			}
			if r < reps-1 {
				os.Remove(goOut)
			}
			fls, mgs = append(fls, f), append(mgs, m)
			walls = append(walls, fmt.Sprintf("%.2f/%.2f", m.wall.Seconds(), f.wall.Seconds()))
		}
		runs[method] = strings.Join(walls, " ")
		fl, mg := median(fls), median(mgs)
		thOut := filepath.Join(dir, method+".torch.safetensors")
		var th measure
		diff := math.NaN()
		if py != "" {
			if th, err = timed(py, append([]string{ref, method, thOut}, inputs...)...); err != nil {
				return err
			}
			if sec, err := strconv.ParseFloat(th.out, 64); err == nil {
				th.wall = time.Duration(sec * float64(time.Second)) // without interpreter start and torch import
			}
			if diff, err = maxDiff(goOut, thOut); err != nil {
				return err
			}
		}
		os.Remove(goOut)
		os.Remove(thOut)
		vsFloor := fl.wall.Seconds() / mg.wall.Seconds()
		vsTorch := th.wall.Seconds() / mg.wall.Seconds()
		torchOK := verdictText(vsTorch >= 3)
		if py == "" {
			vsTorch, torchOK = math.NaN(), "skipped"
		}
		need := 0.8
		if method == "ties" || method == "dare_ties" {
			need = 0.5
		}
		verdict := verdictText
		fmt.Printf("%-10s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2fx %8.2fx %9.0f %9.0f %10.2g floor>=%.1fx:%s torch>=3x:%s rss:%s\n",
			method, mg.wall.Seconds(), fl.wall.Seconds(), th.wall.Seconds(), mg.cpu.Seconds(), fl.cpu.Seconds(), vsFloor, vsTorch, mg.rssMiB, th.rssMiB, diff,
			need, verdict(vsFloor >= need), torchOK, verdict(mg.rssMiB <= budget))
	}
	fmt.Printf("load average at end: %s\n", loadavg())
	fmt.Printf("\nevery run, merge_s/floor_s (the table holds the median of %d):\n", reps)
	for _, method := range methods {
		fmt.Printf("  %-10s %s\n", method, runs[method])
	}
	fmt.Println("\nBoth sides read the parents from the page cache (warmed above) and write to the same folder.")
	fmt.Println("vs_floor = floor time / merge time (1.0 = as fast as just streaming the bytes); vs_torch = torch time / merge time.")
	fmt.Println("mergeCPU/floorCPU = user+system CPU seconds (less sensitive than wall time when the machine is shared).")
	fmt.Println("torch_s excludes interpreter start and torch import; both sides write F16 children without fsync.")
	fmt.Println("max|diff| = largest absolute difference between the Go and torch children (dare_ties: different RNGs, so masks differ).")
	return nil
}

// maxDiff compares two safetensors children tensor by tensor.
func maxDiff(a, b string) (float64, error) {
	ma, err := safetensors.OpenModel(a)
	if err != nil {
		return 0, err
	}
	defer ma.Close()
	mb, err := safetensors.OpenModel(b)
	if err != nil {
		return 0, err
	}
	defer mb.Close()
	var worst float64
	for _, ta := range ma.Tensors {
		tb, ok := mb.Tensor(ta.Name)
		if !ok || tb.Size != ta.Size || tb.DType != ta.DType {
			return 0, fmt.Errorf("%s: tensor %q missing or different in %s", a, ta.Name, b)
		}
		const chunk = 1 << 20
		n := ta.Elements()
		es, _ := ta.DType.Size()
		ra, rb := make([]byte, chunk*es), make([]byte, chunk*es)
		fa, fb := make([]float32, chunk), make([]float32, chunk)
		for s := int64(0); s < n; s += chunk {
			m := min(chunk, n-s)
			if _, err := ta.File.ReadAt(ra[:m*es], ta.Offset+s*es); err != nil {
				return 0, err
			}
			if _, err := tb.File.ReadAt(rb[:m*es], tb.Offset+s*es); err != nil {
				return 0, err
			}
			safetensors.Decode(ta.DType, ra[:m*es], fa[:m])
			safetensors.Decode(tb.DType, rb[:m*es], fb[:m])
			for i := range fa[:m] {
				worst = math.Max(worst, math.Abs(float64(fa[i]-fb[i])))
			}
		}
	}
	return worst, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func verdictText(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}
