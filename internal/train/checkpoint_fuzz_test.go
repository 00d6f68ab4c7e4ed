package train

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/fuzzcheck"
)

// checkpointBound is loadCheckpoint's allocation bound: the GGUF header under the reader's own bound (a
// small multiple of the file), then one buffer per tensor whose size the reader has checked against the
// file, so at most the file again; the epoch's example order is the constant.
var checkpointBound = fuzzcheck.Bound{PerByte: 64, Fixed: 4 << 20}

// FuzzLoadCheckpoint feeds resume files to a trainer built for a tiny model. The seed is a real checkpoint
// of that trainer's configuration, so mutations reach past the identity check into positions and tensors.
func FuzzLoadCheckpoint(f *testing.F) {
	base := tinyModel(f, 4)
	cfg := Config{Steps: 4, LR: 1e-3, Warmup: 1, BatchSize: 2, Seed: 3, CheckpointEvery: 2}
	var ckpt string
	out, _, err := Run(context.Background(), Job{Base: base, Data: qa, Config: cfg, CheckpointDir: f.TempDir(),
		OnCheckpoint: func(p string, step int) error { ckpt = p; return nil }})
	if err != nil {
		f.Fatal(err)
	}
	out.Close()
	good, err := os.ReadFile(ckpt)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/3])
	full, err := cfg.withDefaults(base.Config)
	if err != nil {
		f.Fatal(err)
	}
	seqs, err := tokenize(base.Tok, qa, base.Window())
	if err != nil {
		f.Fatal(err)
	}
	tr, err := newTrainer(full, base, seqs, opsAuto)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(tr.close)
	if err := tr.loadCheckpoint(ckpt); err != nil || tr.step != 2 {
		f.Fatalf("the seed checkpoint does not load (step %d): %v", tr.step, err)
	}
	path := filepath.Join(f.TempDir(), "checkpoint.gguf")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		tr.step, tr.epoch, tr.cursor = 0, 0, 0
		var err error
		fuzzcheck.Check(t, "train.loadCheckpoint", len(b), checkpointBound, func() { err = tr.loadCheckpoint(path) })
		if err != nil {
			return
		}
		// An accepted checkpoint leaves the trainer at a position it can continue from.
		if tr.step < 0 || tr.step > full.Steps || tr.cursor < 0 || tr.cursor > len(seqs) || len(tr.order) != len(seqs) {
			t.Fatalf("resumed at step %d cursor %d (order %d) of %d steps and %d sequences", tr.step, tr.cursor, len(tr.order), full.Steps, len(seqs))
		}
	})
}
