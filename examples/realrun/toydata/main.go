// Command toydata writes toy versions of every file examples/real-run.yaml names into a directory (tiny
// Mistral models as Hugging Face folders and a GGUF, Hub-schema ARC-Challenge / HellaSwag / GSM8K Parquet
// files, chat datasets), and the example scaled down to them as real-run.yaml, so the example's shape runs
// in seconds:
//
//	go run ./examples/realrun/toydata -dir /tmp/toy-run
//	cd /tmp/toy-run && <repo>/bin/starter quickstart -f real-run.yaml --no-ui
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evomerge/evomerge/examples/realrun"
)

func main() {
	dir := flag.String("dir", "toy-run", "directory to write the files and real-run.yaml into")
	example := flag.String("example", "examples/real-run.yaml", "the example to scale down")
	flag.Parse()
	if err := write(*dir, *example); err != nil {
		fmt.Fprintln(os.Stderr, "toydata:", err)
		os.Exit(1)
	}
}

func write(dir, example string) error {
	data, err := os.ReadFile(example)
	if err != nil {
		return err
	}
	scaled, err := realrun.ScaleDown(data)
	if err != nil {
		return fmt.Errorf("%s: %w", example, err)
	}
	if _, err := realrun.WriteFiles(dir); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "real-run.yaml")
	if err := os.WriteFile(cfg, scaled, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote the toy models, data files and %s; run it from %s:\n  cd %s && starter quickstart -f real-run.yaml --no-ui\n", cfg, dir, dir)
	return nil
}
