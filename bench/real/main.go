// Command bench-real runs the real-size benchmarks of issue 14 side by side in one run (`make bench-real`).
//
// Inference: for the 106M shape (dim 576, 30 layers, 9/3 heads, FFN 1536, vocabulary 49152) and TinyLlama's
// shape (dim 2048, 22 layers, 32/4 heads, FFN 5632, vocabulary 32000), in F32, F16 and Q8_0, at each thread
// count, the engine beside llama.cpp (npm node-llama-cpp's prebuilt CPU build, F32 KV cache, no flash
// attention): prompt processing tok/s (500 tokens), scoring items/s (a 4-choice, 25-shot ARC-style item: a
// shared context and four short continuations), generation tok/s (greedy, after a short prompt), and the peak
// RSS of each process, with ratios against the targets (prompt and scoring >= 1.0x llama.cpp, generation
// >= 0.9x). Models are written here with random weights (cached in -models); nothing is downloaded. Both
// engines get the same token ids.
//
// Training: for the 113.7M shape (d=768, 12 layers, byte vocabulary, batch 8) and the 106M shape (batch 4),
// the engine's full fine-tune and LoRA (q, v, rank 8; over an F32 and an F16 base) beside the PyTorch CPU
// reference given the same shape, batch and threads (targets: full >= 1.5x PyTorch, LoRA >= 2.5x full).
//
// Every measurement is its own process, so each peak RSS is its own. -only, -infer-shapes, -types and
// -threads pick a subset.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "engine-child" {
		os.Exit(engineChild(os.Args[2:]))
	}
	trainBin := flag.String("train", "bin/bench-train", "the bench/train binary (training rows)")
	python := flag.String("python", "/usr/bin/python3", "python with torch (training rows)")
	threadList := flag.String("threads", "1,2", "thread counts to run")
	steps := flag.Int("steps", 2, "timed training steps per run (after 3 warm-up steps)")
	trainShape := flag.String("shape", "", "training rows: one shape only (113m or 106m)")
	only := flag.String("only", "", `"infer" or "train": run one half only`)
	inferShapes := flag.String("infer-shapes", "106m,tinyllama", "inference shapes (106m, tinyllama; tiny for a quick check of the path)")
	types := flag.String("types", "f32,f16,q8_0", "inference weight types (f32, f16, bf16, q8_0)")
	npm := flag.String("npm", ".cache/node-llama-cpp", "folder node-llama-cpp is installed in (its node_modules)")
	models := flag.String("models", ".cache/bench-real", "folder for the generated models (reused across runs)")
	reps := flag.Int("reps", 1, "timed repetitions of each inference measurement (after a warm-up)")
	genTokens := flag.Int("gen", 32, "tokens generated per generation measurement")
	device := flag.String("device", "cpu", "the engine's device for the inference rows: cpu or cuda")
	cudaLib := flag.String("cuda-lib", "", "libggml-cuda.so (for -device cuda; infra/build-cuda.sh builds it)")
	withRef := flag.Bool("llamacpp", true, "run llama.cpp beside the engine (its CPU build: turn off with -device cuda)")
	flag.Parse()
	threads, err := parseThreads(*threadList)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-real:", err)
		os.Exit(2)
	}
	if *only != "" && *only != "infer" && *only != "train" {
		fmt.Fprintf(os.Stderr, "bench-real: -only %q: want infer or train\n", *only)
		os.Exit(2)
	}
	ok := true
	if *only != "train" {
		o := inferOptions{threads: threads, npm: *npm, models: *models, reps: *reps, gen: *genTokens,
			device: *device, cudaLib: *cudaLib, llamacpp: *withRef}
		if *device != "cpu" && *device != "cuda" {
			fmt.Fprintf(os.Stderr, "bench-real: -device %q: want cpu or cuda\n", *device)
			os.Exit(2)
		}
		if o.shapes, err = pickShapes(*inferShapes); err == nil {
			o.types, err = pickTypes(*types)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-real:", err)
			os.Exit(2)
		}
		ok = runInference(o) && ok
	}
	if *only != "infer" {
		if *only == "" {
			fmt.Println()
		}
		ok = runTraining(trainOptions{trainBin: *trainBin, python: *python, threads: threads, steps: *steps, shape: *trainShape}) && ok
	}
	if !ok {
		os.Exit(1)
	}
}

func parseThreads(list string) ([]int, error) {
	var out []int
	for _, ts := range strings.Split(list, ",") {
		th, err := strconv.Atoi(strings.TrimSpace(ts))
		if err != nil || th < 1 {
			return nil, fmt.Errorf("-threads %q: %q is not a positive number", list, ts)
		}
		out = append(out, th)
	}
	return out, nil
}
