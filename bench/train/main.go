// Command bench-train measures training tokens/s of the engine on a fixed tiny llama (d=256, 4 layers,
// ctx 128, batch 8) and of a PyTorch CPU reference of the same model and batch (bench/train/reference.py,
// Debian's python3-torch), with the same thread count, and prints both and their ratio.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/train"
)

func main() {
	threads := flag.Int("threads", ggml.DefaultThreads(), "CPU threads for both engines")
	steps := flag.Int("steps", 20, "timed optimizer steps")
	python := flag.String("python", "/usr/bin/python3", "python with torch")
	device := flag.String("device", "cpu", "cpu or cuda (cuda: EVOMERGE_CUDA_LIB names libggml-cuda.so; no reference run)")
	big := flag.Bool("big", false, "a ~110M-parameter model (d=768, 12 layers) instead of the fixed tiny one")
	flag.Parse()
	cfg := llm.Config{Vocab: llm.ByteVocabLen, Dim: 256, Layers: 4, Heads: 4, KVHeads: 4, FFN: 768, Context: 128, RopeBase: 10000, NormEps: 1e-5}
	if *big {
		cfg.Dim, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.FFN = 768, 12, 12, 12, 3072
	}
	const batch = 8
	base, err := llm.NewTiny(cfg, 1, llm.Options{Threads: *threads, Device: *device})
	check(err)
	defer base.Close()
	// Random byte texts of exactly ctx+1 tokens (BOS + 127 bytes + EOS), like the reference's random tokens.
	rng := rand.New(rand.NewPCG(1, 2))
	var data []train.Example
	for i := 0; i < batch; i++ {
		b := make([]byte, cfg.Context-1)
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		data = append(data, train.Example{Text: string(b)})
	}
	const warmup = 3
	var start time.Time
	_, _, err = train.Run(context.Background(), train.Job{Base: base, Data: data,
		Config: train.Config{Steps: warmup + *steps, LR: 1e-3, BatchSize: batch, Seed: 1},
		Progress: func(p train.Progress) {
			if p.Step == warmup {
				start = time.Now()
			}
		}})
	check(err)
	ours := float64(*steps*batch*cfg.Context) / time.Since(start).Seconds()
	params := float64(cfg.Parameters(false))
	fmt.Printf("engine (ggml %s, %d threads): %8.0f tokens/s  (d=%d, %d layers, ctx %d, batch %d, %.1fM params)\n",
		base.Backend().Name(), *threads, ours, cfg.Dim, cfg.Layers, cfg.Context, batch, params/1e6)
	// 6·N FLOPs per token for the weights plus the attention scores, forward and backward.
	flops := ours * (6*params + 12*float64(cfg.Layers*cfg.Dim*cfg.Context))
	fmt.Printf("model FLOPs: %.2f TFLOP/s\n", flops/1e12)
	if *device != "cpu" {
		return
	}
	out, err := exec.Command(*python, "bench/train/reference.py", "--threads", strconv.Itoa(*threads), "--steps", strconv.Itoa(*steps)).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "reference failed: %v\n%s", err, out)
		os.Exit(1)
	}
	m := regexp.MustCompile(`tokens_per_sec=([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		fmt.Fprintf(os.Stderr, "reference printed no speed:\n%s", out)
		os.Exit(1)
	}
	ref, _ := strconv.ParseFloat(string(bytes.TrimSpace(m[1])), 64)
	fmt.Printf("pytorch reference (%d thr):  %8.0f tokens/s\n", *threads, ref)
	fmt.Printf("ratio engine/pytorch:        %8.2fx  (target >= 1.5x)\n", ours/ref)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
