package merge

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// sink receives the child's tensor bytes in order and publishes the result.
type sink interface {
	write(o *outTensor, p []byte) error
	commit() (Result, error)
	abort()
}

// hashedFile is a temp file whose bytes are hashed and counted as they are written.
// Each buffer is hashed on a second goroutine while the write system call copies
// it, so the writer's time per buffer is the longer of the two, not their sum.
type hashedFile struct {
	f      *os.File
	h      hash.Hash
	n      int64
	w      *bufio.Writer
	toHash chan []byte
	hashed chan struct{}
}

func createHashed(dir, pattern string) (*hashedFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	hf := &hashedFile{f: f, h: sha256.New(), toHash: make(chan []byte), hashed: make(chan struct{})}
	go func() {
		for p := range hf.toHash {
			hf.h.Write(p)
			hf.hashed <- struct{}{}
		}
	}()
	hf.w = bufio.NewWriterSize(hf, 256<<10) // small: chunks of 256 KiB and more go to the file without a copy
	return hf, nil
}

func (hf *hashedFile) Write(p []byte) (int, error) {
	hf.toHash <- p // p stays unchanged until the hasher is done with it
	n, err := hf.f.Write(p)
	<-hf.hashed
	hf.n += int64(n)
	return n, err // a short write fails the merge, so the hash of all of p is never used
}

// close stops the hasher and closes the file.
func (hf *hashedFile) close() error {
	if hf.toHash != nil {
		close(hf.toHash)
		hf.toHash = nil
	}
	return hf.f.Close()
}

// finish flushes, optionally syncs and closes; it returns the hex sha256.
func (hf *hashedFile) finish(sync bool) (string, error) {
	if err := hf.w.Flush(); err != nil {
		return "", err
	}
	if sync {
		if err := hf.f.Sync(); err != nil {
			return "", err
		}
	}
	if err := hf.close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(hf.h.Sum(nil)), nil
}

// ggufSink writes a GGUF child to a temp file beside out and renames it at the end.
type ggufSink struct {
	out  string
	hf   *hashedFile
	gw   *gguf.Writer
	sync bool
}

func newGGUFSink(out string, pl *plan, opts Options) (*ggufSink, error) {
	kvs := append([]gguf.KV(nil), pl.ref.gg.KVs...)
	arch, _ := pl.ref.gg.String("general.architecture")
	allFloat := true
	for _, o := range pl.tensors {
		allFloat = allFloat && o.typ.isFloat()
	}
	for i, kv := range kvs {
		switch {
		case kv.Key == arch+".block_count" && pl.numLayers != numLayers(pl.ref):
			kvs[i].Value = retype(kv.Value, uint64(pl.numLayers))
		case kv.Key == "general.file_type" && allFloat:
			ft := map[string]uint64{"F32": 0, "F16": 1, "BF16": 32}[pl.outType.name]
			kvs[i].Value = retype(kv.Value, ft)
		}
	}
	infos := make([]gguf.TensorInfo, len(pl.tensors))
	for i, o := range pl.tensors {
		infos[i] = gguf.TensorInfo{Name: o.name, Shape: o.shape, Type: o.typ.gg}
	}
	hf, err := createHashed(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("out %s: %v", out, err)
	}
	gw, err := gguf.NewWriter(hf.w, kvs, infos)
	if err != nil {
		hf.close()
		os.Remove(hf.f.Name())
		return nil, fmt.Errorf("out %s: %v", out, err)
	}
	return &ggufSink{out: out, hf: hf, gw: gw, sync: !opts.NoSync}, nil
}

// retype keeps a metadata value's integer type when changing it.
func retype(old any, v uint64) any {
	switch old.(type) {
	case uint8:
		return uint8(v)
	case uint16:
		return uint16(v)
	case uint32:
		return uint32(v)
	case int32:
		return int32(v)
	case int64:
		return int64(v)
	case int16:
		return int16(v)
	case int8:
		return int8(v)
	}
	return v
}

func (s *ggufSink) write(o *outTensor, p []byte) error {
	if _, err := s.gw.Write(p); err != nil {
		return fmt.Errorf("out %s: tensor %q: %v", s.out, o.name, err)
	}
	return nil
}

func (s *ggufSink) commit() (Result, error) {
	if err := s.gw.Close(); err != nil {
		return Result{}, fmt.Errorf("out %s: %v", s.out, err)
	}
	sum, err := s.hf.finish(s.sync)
	if err != nil {
		return Result{}, fmt.Errorf("out %s: %v", s.out, err)
	}
	if err := os.Rename(s.hf.f.Name(), s.out); err != nil {
		return Result{}, err
	}
	return Result{SHA256: sum, Bytes: s.hf.n}, nil
}

func (s *ggufSink) abort() {
	s.hf.close()
	os.Remove(s.hf.f.Name())
}

// auxFiles are copied from the base model's folder into a folder child.
var auxFiles = []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
	"tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja"}

// stSink writes safetensors: one file, or a folder with shards, index and the
// base's config and tokenizer files, built in a temp folder and renamed at the end.
type stSink struct {
	out     string
	folder  bool
	dir     string // temp folder (folder output)
	pl      *plan
	shards  [][]safetensors.TensorInfo
	shardOf map[string]int
	cur     int
	hf      *hashedFile
	sw      *safetensors.Writer
	files   map[string]string
	total   int64
	sync    bool
}

func newSafetensorsSink(out string, pl *plan, opts Options) (*stSink, error) {
	s := &stSink{out: out, pl: pl, shardOf: map[string]int{}, files: map[string]string{}, cur: -1, sync: !opts.NoSync}
	infos := make([]safetensors.TensorInfo, len(pl.tensors))
	for i, o := range pl.tensors {
		shape := o.shape
		infos[i] = safetensors.TensorInfo{Name: o.name, DType: o.typ.st, Shape: shape}
	}
	s.folder = !strings.EqualFold(filepath.Ext(out), ".safetensors")
	maxShard := opts.MaxShardBytes
	if maxShard <= 0 {
		maxShard = 5_000_000_000
	}
	if !s.folder {
		maxShard = 0
	}
	var err error
	if s.shards, err = safetensors.PlanShards(infos, maxShard); err != nil {
		return nil, err
	}
	for i, sh := range s.shards {
		for _, t := range sh {
			s.shardOf[t.Name] = i
		}
	}
	if s.folder {
		if s.dir, err = os.MkdirTemp(filepath.Dir(filepath.Clean(out)), "."+filepath.Base(out)+".tmp-*"); err != nil {
			return nil, fmt.Errorf("out %s: %v", out, err)
		}
	}
	if err := s.open(0); err != nil {
		s.abort()
		return nil, err
	}
	return s, nil
}

func (s *stSink) shardFile(i int) string {
	if len(s.shards) == 1 {
		return safetensors.SingleName
	}
	return safetensors.ShardName(i, len(s.shards))
}

func (s *stSink) open(i int) error {
	dir, pattern := s.dir, s.shardFile(i)+".tmp-*"
	if !s.folder {
		dir, pattern = filepath.Dir(s.out), "."+filepath.Base(s.out)+".tmp-*"
	}
	hf, err := createHashed(dir, pattern)
	if err != nil {
		return fmt.Errorf("out %s: %v", s.out, err)
	}
	sw, err := safetensors.NewWriter(hf.w, map[string]string{"format": "pt"}, s.shards[i])
	if err != nil {
		hf.close()
		os.Remove(hf.f.Name())
		return fmt.Errorf("out %s: %v", s.out, err)
	}
	s.cur, s.hf, s.sw = i, hf, sw
	return nil
}

// closeShard finishes the current file; in a folder it gets its final name there.
func (s *stSink) closeShard() error {
	if err := s.sw.Close(); err != nil {
		return fmt.Errorf("out %s: %v", s.out, err)
	}
	sum, err := s.hf.finish(s.sync)
	if err != nil {
		return fmt.Errorf("out %s: %v", s.out, err)
	}
	s.total += s.hf.n
	name := s.shardFile(s.cur)
	s.files[name] = sum
	if s.folder {
		if err := os.Rename(s.hf.f.Name(), filepath.Join(s.dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func (s *stSink) write(o *outTensor, p []byte) error {
	if sh := s.shardOf[o.name]; sh != s.cur {
		if err := s.closeShard(); err != nil {
			return err
		}
		if err := s.open(sh); err != nil {
			return err
		}
	}
	if err := s.sw.WriteTensor(o.name, p); err != nil {
		return fmt.Errorf("out %s: %v", s.out, err)
	}
	return nil
}

func (s *stSink) commit() (Result, error) {
	for s.cur < len(s.shards)-1 { // trailing shards of empty tensors only
		if err := s.closeShard(); err != nil {
			return Result{}, err
		}
		if err := s.open(s.cur + 1); err != nil {
			return Result{}, err
		}
	}
	if err := s.closeShard(); err != nil {
		return Result{}, err
	}
	if !s.folder {
		tmp := s.hf.f.Name()
		if err := os.Rename(tmp, s.out); err != nil {
			return Result{}, err
		}
		return Result{SHA256: s.files[safetensors.SingleName], Bytes: s.total}, nil
	}
	if len(s.shards) > 1 {
		idx, err := safetensors.IndexJSON(s.shards)
		if err != nil {
			return Result{}, err
		}
		if err := s.writeAux(safetensors.IndexName, idx); err != nil {
			return Result{}, err
		}
	}
	if s.pl.ref.st != nil && s.pl.ref.st.Dir != "" {
		for _, name := range auxFiles {
			data, err := readBounded(filepath.Join(s.pl.ref.st.Dir, name), 512<<20)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				return Result{}, err
			}
			if name == "config.json" {
				if data, err = s.editConfig(data); err != nil {
					return Result{}, fmt.Errorf("%s: %v", filepath.Join(s.pl.ref.st.Dir, name), err)
				}
			}
			if err := s.writeAux(name, data); err != nil {
				return Result{}, err
			}
		}
	}
	names := make([]string, 0, len(s.files))
	for n := range s.files {
		names = append(names, n)
	}
	sort.Strings(names)
	var manifest bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&manifest, "%s  %s\n", s.files[n], n)
	}
	if s.sync {
		if d, err := os.Open(s.dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	if st, err := os.Stat(s.out); err == nil && st.IsDir() {
		if err := os.RemoveAll(s.out); err != nil {
			return Result{}, err
		}
	}
	if err := os.Rename(s.dir, s.out); err != nil {
		return Result{}, err
	}
	sum := sha256.Sum256(manifest.Bytes())
	return Result{SHA256: hex.EncodeToString(sum[:]), Bytes: s.total, Files: s.files}, nil
}

func (s *stSink) writeAux(name string, data []byte) error {
	if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o644); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	s.files[name] = hex.EncodeToString(sum[:])
	s.total += int64(len(data))
	return nil
}

// editConfig records the child's layer count and dtype in config.json.
func (s *stSink) editConfig(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var cfg map[string]any
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	if _, ok := cfg["num_hidden_layers"]; ok {
		cfg["num_hidden_layers"] = s.pl.numLayers
	}
	if _, ok := cfg["torch_dtype"]; ok {
		cfg["torch_dtype"] = map[string]string{"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[s.pl.outType.name]
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func (s *stSink) abort() {
	if s.hf != nil {
		s.hf.close()
		os.Remove(s.hf.f.Name())
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}
