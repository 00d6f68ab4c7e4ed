// Command bench-train measures training tokens/s of the engine and of a PyTorch CPU reference of the same
// model shape, batch, thread count and optimizer (bench/train/reference.py, Debian's python3-torch), and prints
// both and their ratio. -shape picks the model: tiny (d=256, 4 layers, the default), 113m (d=768, 12 layers,
// byte vocabulary) or 106m (dim 576, 30 layers, 9/3 heads, FFN 1536, vocabulary 49152). Weights are random.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/train"
)

// Shapes are the models the benchmark can build.
var Shapes = map[string]llm.Config{
	"tiny": {Vocab: llm.ByteVocabLen, Dim: 256, Layers: 4, Heads: 4, KVHeads: 4, FFN: 768, Context: 128, RopeBase: 10000, NormEps: 1e-5},
	"113m": {Vocab: llm.ByteVocabLen, Dim: 768, Layers: 12, Heads: 12, KVHeads: 12, FFN: 3072, Context: 128, RopeBase: 10000, NormEps: 1e-5},
	"106m": {Vocab: 49152, Dim: 576, Layers: 30, Heads: 9, KVHeads: 3, FFN: 1536, Context: 128, RopeBase: 10000, NormEps: 1e-5},
	// TinyLlama 1.1B's shape, for the GPU check (4.4 GB of F32 weights).
	"tinyllama": {Vocab: 32000, Dim: 2048, Layers: 22, Heads: 32, KVHeads: 4, FFN: 5632, Context: 128, RopeBase: 10000, NormEps: 1e-5},
}

var types = map[string]ggml.Type{"f32": ggml.F32, "f16": ggml.F16, "bf16": ggml.BF16, "q8_0": ggml.Q8_0, "q4_k": ggml.Q4_K}

// cudaLibrary is libggml-cuda.so for -device cuda (infra/build-cuda.sh builds it): the engine reads no
// environment, so the library reaches the model, and through it the trainer, as an option.
var cudaLibrary = flag.String("cuda-lib", "", "libggml-cuda.so for -device cuda (infra/build-cuda.sh builds it)")

func main() {
	threads := flag.Int("threads", ggml.DefaultThreads(), "CPU threads for both engines")
	steps := flag.Int("steps", 20, "timed optimizer steps (after 3 warm-up steps)")
	python := flag.String("python", "/usr/bin/python3", "python with torch")
	device := flag.String("device", "cpu", "cpu or cuda (cuda: -cuda-lib names libggml-cuda.so; no reference run)")
	shape := flag.String("shape", "tiny", "model shape: tiny, 113m, 106m or tinyllama")
	typ := flag.String("type", "f32", "the base's matrix type: f32, f16, bf16, q8_0 or q4_k (a full fine-tune trains F32 copies; LoRA keeps the base's type)")
	peak := flag.Float64("peak-tflops", 0, "the device's peak TFLOP/s for the weights' type: prints MFU")
	big := flag.Bool("big", false, "same as -shape 113m")
	batch := flag.Int("batch", 8, "sequences per step")
	method := flag.String("method", "full", "full or lora (LoRA: rank 8 on q and v; the reference always runs full)")
	noRef := flag.Bool("no-ref", false, "skip the PyTorch reference")
	mem := flag.Bool("mem", false, "memory check: reset the peak RSS once the random base is built, and print the peak RSS of training against the base's GGUF file size + trainer state + graphs + 256 MiB")
	flag.Parse()
	if *big {
		*shape = "113m"
	}
	cfg, ok := Shapes[*shape]
	if !ok {
		check(fmt.Errorf("bench-train: -shape %q is not tiny, 113m, 106m or tinyllama", *shape))
	}
	wt, ok := types[*typ]
	if !ok {
		check(fmt.Errorf("bench-train: -type %q is not f32, f16, bf16, q8_0 or q4_k", *typ))
	}
	ours, err := Engine(cfg, wt, *batch, *steps, *threads, *device, *method, *mem)
	check(err)
	params := float64(cfg.Parameters(false))
	fmt.Printf("engine %s (ggml %s, %d threads): %8.1f tokens/s  (d=%d, %d layers, vocab %d, ctx %d, batch %d, %.1fM params)\n",
		*method, *device, *threads, ours, cfg.Dim, cfg.Layers, cfg.Vocab, cfg.Context, *batch, params/1e6)
	// 6·N FLOPs per token for the weights plus the attention scores, forward and backward.
	flops := ours * (6*params + 12*float64(cfg.Layers*cfg.Dim*cfg.Context))
	if *method != "full" {
		flops = flops * 2 / 3 // no weight gradients: forward and the input gradients only
	}
	fmt.Printf("model FLOPs: %.3f TFLOP/s\n", flops/1e12)
	if *peak > 0 {
		fmt.Printf("MFU: %.1f %% of %.0f TFLOP/s\n", 100*flops/1e12 / *peak, *peak)
	}
	if *device != "cpu" || *noRef {
		return
	}
	ref, err := Reference(*python, cfg, *batch, *steps, *threads)
	check(err)
	fmt.Printf("pytorch reference full (%d thr): %8.1f tokens/s\n", *threads, ref)
	fmt.Printf("ratio engine/pytorch:        %8.2fx  (target >= 1.5x for full)\n", ours/ref)
}

// Engine trains a random-weight model of shape cfg for 3 warm-up and then steps timed steps on random
// lower-case byte texts of exactly cfg.Context tokens, and returns the timed tokens/s.
func Engine(cfg llm.Config, typ ggml.Type, batch, steps, threads int, device, method string, mem bool) (float64, error) {
	o := llm.Options{Threads: threads, Device: device, CUDALibrary: *cudaLibrary}
	base, err := RandomModel(cfg, typ, 1, o)
	if err != nil {
		return 0, err
	}
	var fileBytes int64
	if mem {
		if base, fileBytes, err = settle(base); err != nil {
			return 0, err
		}
	}
	defer base.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var data []train.Example
	for i := 0; i < batch; i++ {
		b := make([]byte, cfg.Context-1) // BOS + 127 bytes (+ EOS) = ctx positions
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		data = append(data, train.Example{Text: string(b)})
	}
	const warmup = 3
	var start, end time.Time
	var peak int64
	var peakErr error
	out, res, err := train.Run(context.Background(), train.Job{Base: base, Data: data,
		Config: train.Config{Steps: warmup + steps, LR: 1e-3, BatchSize: batch, Seed: 1, Method: method},
		Progress: func(p train.Progress) {
			switch p.Step {
			case warmup:
				start = time.Now()
			case warmup + steps:
				// The timed steps end here, as the reference's do: building the output model is not a step.
				end = time.Now()
				if mem {
					peak, peakErr = peakRSS()
				}
			}
		}})
	if err != nil {
		return 0, err
	}
	built := time.Since(end)
	out.Close()
	tokS := float64(steps*batch*cfg.Context) / end.Sub(start).Seconds()
	fmt.Printf("output model built in %.2f s (after the timed steps)\n", built.Seconds())
	if mem {
		if peakErr != nil {
			return 0, peakErr
		}
		peakAll, err := peakRSS()
		if err != nil {
			return 0, err
		}
		const MiB = 1 << 20
		budget := fileBytes + res.StateBytes + res.GraphBytes + 256*MiB
		verdict := "within"
		if peak > budget {
			verdict = "OVER"
		}
		fmt.Printf("memory %s over a %s base: peak RSS %d MiB since the base was built, to the last step; base file %d + trainer state (adapters or weights, moments) %d + graphs (activations, gradients) %d + 256 = %d MiB: %s\n",
			method, typeName(typ), peak/MiB, fileBytes/MiB, res.StateBytes/MiB, res.GraphBytes/MiB, budget/MiB, verdict)
		fmt.Printf("memory with the output model built (merged weights, a second model): peak RSS %d MiB\n", peakAll/MiB)
	}
	return tokS, nil
}

func typeName(t ggml.Type) string {
	for name, u := range types {
		if u == t {
			return name
		}
	}
	return fmt.Sprint(int(t))
}

// settle saves m as GGUF (for the file's size), returns the host memory the random weights' generation used to
// the OS and resets the peak RSS (Linux clear_refs 5): the peak measured after it is that of a fine-tune of a
// model already in memory, as a worker holds it after loading. (A model with the byte tokenizer and a wider
// vocabulary does not load back from its file, so the model in memory is kept.)
func settle(m *llm.Model) (*llm.Model, int64, error) {
	dir, err := os.MkdirTemp("", "bench-train-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "base.gguf")
	if _, err := m.Save(path); err != nil {
		m.Close()
		return nil, 0, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return nil, 0, fmt.Errorf("resetting the peak RSS: %w", err)
	}
	return m, st.Size(), nil
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("no VmHWM in /proc/self/status")
	}
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10, err
}

// RandomModel builds a model of shape cfg with N(0, 0.02) weights (norms 1), its matrices stored as typ, and
// the byte tokenizer; a vocabulary larger than the byte one only widens the embedding and output (the texts
// use byte ids).
func RandomModel(cfg llm.Config, typ ggml.Type, seed uint64, o llm.Options) (*llm.Model, error) {
	if cfg.Vocab == llm.ByteVocabLen && typ == ggml.F32 {
		return llm.NewTiny(cfg, seed, o)
	}
	specs := cfg.Specs(gguf.Type(typ))
	rng := rand.New(rand.NewPCG(seed, 7))
	data := map[string][]byte{}
	for _, s := range specs {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			if len(s.Shape) == 1 {
				v[i] = 1
			} else {
				v[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
		b := make([]byte, ggml.RowSize(ggml.Type(s.Type), n))
		if err := ggml.FromFloat32(ggml.Type(s.Type), v, b, s.Shape[0]); err != nil {
			return nil, err
		}
		data[s.Name] = b
	}
	return llm.FromHost(cfg, llm.ByteTokenizer{}, nil, specs, data, o)
}

// Reference runs bench/train/reference.py with the same shape, batch, steps and threads and returns its tokens/s.
func Reference(python string, cfg llm.Config, batch, steps, threads int) (float64, error) {
	args := []string{"bench/train/reference.py", "--threads", strconv.Itoa(threads), "--steps", strconv.Itoa(steps),
		"--vocab", strconv.Itoa(cfg.Vocab), "--dim", strconv.Itoa(cfg.Dim), "--layers", strconv.Itoa(cfg.Layers),
		"--heads", strconv.Itoa(cfg.Heads), "--kv-heads", strconv.Itoa(cfg.KVHeads), "--ffn", strconv.Itoa(cfg.FFN),
		"--ctx", strconv.Itoa(cfg.Context), "--batch", strconv.Itoa(batch)}
	cmd := exec.Command(python, args...)
	cmd.Env = ReferenceEnv(threads)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("reference failed: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`tokens_per_sec=([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("reference printed no speed:\n%s", out)
	}
	return strconv.ParseFloat(string(bytes.TrimSpace(m[1])), 64)
}

// ReferenceEnv is the environment for the PyTorch reference: OpenBLAS and OpenMP keep their own thread pools
// whatever torch.set_num_threads says, so without these a "1-thread" reference ran on every core and a
// 2-thread one oversubscribed the cores.
func ReferenceEnv(threads int) []string {
	n := strconv.Itoa(threads)
	return append(os.Environ(), "OPENBLAS_NUM_THREADS="+n, "OMP_NUM_THREADS="+n, "MKL_NUM_THREADS="+n)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
