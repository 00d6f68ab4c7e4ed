package main

import (
	"context"
	"fmt"
	"io"

	"github.com/evomerge/evomerge/internal/merge"
)

// cmdMerge is a one-off local merge from a mergekit-style YAML: no Temporal,
// no store, just files in and a file out (.gguf, .safetensors or a Hugging
// Face folder). The project's one merge command.
func cmdMerge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("merge", stderr)
	conf := fs.String("c", "", "mergekit-style YAML (merge_method, base_model, models, parameters)")
	out := fs.String("o", "", "output: .gguf, .safetensors, or a folder")
	threads := fs.Int("threads", 0, "merge goroutines (0 = number of CPUs)")
	seed := fs.Int64("seed", -1, "seed for random methods (overrides the config's seed when >= 0)")
	shard := fs.Int64("max-shard-bytes", 0, "shard safetensors folder output above this size (0 = 5 GB)")
	quiet := fs.Bool("q", false, "no progress on stderr")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *conf == "" || *out == "" || len(pos) > 0 {
		return fmt.Errorf("%w: merge needs -c config.yaml -o out.gguf", errUsage)
	}
	inputs, spec, err := merge.LoadMergekit(*conf)
	if err != nil {
		return err
	}
	if *seed >= 0 {
		spec.Seed = uint64(*seed)
	}
	opts := merge.Options{Parallelism: *threads, MaxShardBytes: *shard}
	if !*quiet {
		opts.Progress = func(done, total int) {
			fmt.Fprintf(stderr, "\r%s: %d/%d tensors", spec.Method, done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	res, err := merge.Merge(ctx, inputs, *out, spec, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "merged %d models with %s into %s: %d tensors, %d bytes, sha256:%s\n",
		len(inputs), spec.Method, *out, res.Tensors, res.Bytes, res.SHA256)
	return nil
}
