package train

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/evomerge/evomerge/internal/faultfs"
)

// A fine-tune whose checkpoint directory runs out of space fails with an error naming that directory,
// leaves no partial checkpoint, and runs to the end once space returns.
func TestCheckpointDiskFull(t *testing.T) {
	dir := faultfs.SmallDisk(t, 64<<10) // a checkpoint of the tiny model is ~1.5 MB
	base := tinyModel(t, 6)
	cfg := Config{Steps: 4, LR: 1e-3, Warmup: 1, BatchSize: 2, Seed: 3, CheckpointEvery: 2}
	_, _, err := Run(context.Background(), Job{Base: base, Data: qa, Config: cfg, CheckpointDir: dir})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("want a no-space error naming %s, got %v", dir, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the failed checkpoint left %d files (%s)", len(left), left[0].Name())
	}
	faultfs.Resize(t, dir, 64<<20)
	var wrote []string
	out, res, err := Run(context.Background(), Job{Base: base, Data: qa, Config: cfg, CheckpointDir: dir,
		OnCheckpoint: func(p string, step int) error { wrote = append(wrote, p); return nil }})
	if err != nil {
		t.Fatalf("after space returned: %v", err)
	}
	out.Close()
	if res.Steps != cfg.Steps || len(wrote) != 1 {
		t.Fatalf("ran %d steps, wrote checkpoints %v", res.Steps, wrote)
	}
}
