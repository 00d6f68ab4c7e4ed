package train

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"unsafe"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
)

// A checkpoint is a GGUF file: the trainer state in metadata (step, data position, the hyperparameters that
// must match on resume) and, per trainable tensor, its value and AdamW moments. The example order is a
// function of (seed, epoch), so the data position is the whole RNG state.
const (
	ckptVersion = "evomerge.checkpoint.version"
	ckptStep    = "evomerge.checkpoint.step"
	ckptEpoch   = "evomerge.checkpoint.epoch"
	ckptCursor  = "evomerge.checkpoint.cursor"
	ckptConfig  = "evomerge.checkpoint.config"
	ckptTokens  = "evomerge.checkpoint.tokens" // absent in checkpoints written before it: 0
)

// resumeIdentity is what must be equal between the run that wrote a checkpoint and the one resuming it.
func (t *trainer) resumeIdentity() string {
	c := t.cfg
	c.CheckpointEvery = 0
	b, _ := json.Marshal(struct {
		Config
		Seqs, L int
	}{c, len(t.seqs), t.L})
	return string(b)
}

func (t *trainer) checkpoint(job Job) (string, error) {
	path := filepath.Join(job.CheckpointDir, fmt.Sprintf("checkpoint-%06d.gguf", t.step))
	kvs := []gguf.KV{
		{Key: ckptVersion, Value: uint32(1)},
		{Key: ckptStep, Value: uint64(t.step)},
		{Key: ckptEpoch, Value: uint64(t.epoch)},
		{Key: ckptCursor, Value: uint64(t.cursor)},
		{Key: ckptConfig, Value: t.resumeIdentity()},
		{Key: ckptTokens, Value: uint64(t.trained)},
	}
	var infos []gguf.TensorInfo
	for _, tr := range t.params {
		for _, kind := range []string{"p", "m", "v"} {
			infos = append(infos, gguf.TensorInfo{Name: kind + ":" + tr.name, Shape: tr.p.Shape(), Type: gguf.TypeF32})
		}
	}
	if _, err := llm.WriteFileAtomic(path, func(w io.Writer) error {
		gw, err := gguf.NewWriter(w, kvs, infos)
		if err != nil {
			return err
		}
		for _, tr := range t.params {
			for _, x := range []struct {
				kind string
				v    []float32
			}{{"p", tr.p.F32()}, {"m", tr.m.F32()}, {"v", tr.v.F32()}} {
				if err := gw.WriteTensor(x.kind+":"+tr.name, f32bytes(x.v)); err != nil {
					return err
				}
			}
		}
		return gw.Close()
	}); err != nil {
		return "", fmt.Errorf("train: writing checkpoint: %w", err)
	}
	if job.OnCheckpoint != nil {
		if err := job.OnCheckpoint(path, t.step); err != nil {
			return path, err
		}
	}
	return path, nil
}

func (t *trainer) loadCheckpoint(path string) error {
	f, file, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	defer file.Close()
	if v, _ := f.Uint(ckptVersion); v != 1 {
		return fmt.Errorf("train: %s is not a version 1 checkpoint", path)
	}
	if id, _ := f.String(ckptConfig); id != t.resumeIdentity() {
		return fmt.Errorf("train: checkpoint %s was written by a run with other hyperparameters or data", path)
	}
	step, _ := f.Uint(ckptStep)
	epoch, _ := f.Uint(ckptEpoch)
	cursor, _ := f.Uint(ckptCursor)
	if step > uint64(t.cfg.Steps) || cursor > uint64(len(t.seqs)) || epoch > 1<<40 {
		return fmt.Errorf("train: checkpoint %s has an invalid position (step %d, epoch %d, cursor %d)", path, step, epoch, cursor)
	}
	for _, tr := range t.params {
		for _, kind := range []string{"p", "m", "v"} {
			name := kind + ":" + tr.name
			info, ok := f.Tensor(name)
			if !ok || info.Type != gguf.TypeF32 || !slices.Equal(info.Shape, tr.p.Shape()) {
				return fmt.Errorf("train: checkpoint %s: tensor %s is missing or has the wrong shape", path, name)
			}
			buf := make([]byte, info.Size)
			if _, err := file.ReadAt(buf, info.Offset); err != nil {
				return fmt.Errorf("train: checkpoint %s: %w", path, err)
			}
			map[string]func([]byte){"p": tr.p.SetBytes, "m": tr.m.SetBytes, "v": tr.v.SetBytes}[kind](buf)
		}
	}
	tokens, _ := f.Uint(ckptTokens)
	t.step, t.epoch, t.cursor, t.trained = int(step), int(epoch), int(cursor), int64(tokens)
	t.shuffle()
	return nil
}

func f32bytes(v []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}
