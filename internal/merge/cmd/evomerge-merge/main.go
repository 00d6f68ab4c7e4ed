// Command evomerge-merge runs one merge from a mergekit YAML config:
//
//	evomerge-merge -config merge.yaml -out child.gguf
//
// The output format follows -out: .gguf, .safetensors (one file) or a folder
// (Hugging Face layout). It prints the result (sha256, bytes, tensors) as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/evomerge/evomerge/internal/merge"
)

func main() {
	config := flag.String("config", "", "mergekit YAML file (required)")
	out := flag.String("out", "", "output path: .gguf, .safetensors or a folder (required)")
	seed := flag.Int64("seed", -1, "seed for random methods (overrides the config's seed when >= 0)")
	par := flag.Int("parallel", runtime.NumCPU(), "worker goroutines")
	shard := flag.Int64("max-shard-bytes", 0, "shard safetensors folder output above this size (0 = 5 GB)")
	quiet := flag.Bool("q", false, "no progress on stderr")
	flag.Parse()
	if *config == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	inputs, spec, err := merge.LoadMergekit(*config)
	if err != nil {
		fail(err)
	}
	if *seed >= 0 {
		spec.Seed = uint64(*seed)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	opts := merge.Options{Parallelism: *par, MaxShardBytes: *shard}
	if !*quiet {
		opts.Progress = func(done, total int) {
			fmt.Fprintf(os.Stderr, "\r%s: %d/%d tensors", spec.Method, done, total)
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
		}
	}
	res, err := merge.Merge(ctx, inputs, *out, spec, opts)
	if err != nil {
		fail(err)
	}
	report := struct {
		merge.Result
		Out     string  `json:"out"`
		Seconds float64 `json:"seconds"`
	}{res, *out, time.Since(start).Seconds()}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(report)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "evomerge-merge:", err)
	os.Exit(1)
}
