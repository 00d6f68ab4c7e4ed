package safetensors

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// IndexName is the file that maps tensors to shards in a sharded checkpoint.
const IndexName = "model.safetensors.index.json"

// SingleName is the file name of an unsharded checkpoint inside a model folder.
const SingleName = "model.safetensors"

// maxIndexBytes bounds the index JSON (a few MB for the largest public models).
const maxIndexBytes = 64 << 20

// Tensor is a tensor of a Model together with the open file holding it.
type Tensor struct {
	TensorInfo
	File   *os.File
	Source string // shard path, for error messages
}

// Model is a checkpoint: one file, or the shards listed by an index. Tensors are
// ordered by shard (in index order) and then by offset.
type Model struct {
	Dir     string // folder holding config.json etc.; "" when opened as a bare file
	Tensors []Tensor
	files   []*os.File
}

// Close closes every shard.
func (m *Model) Close() error {
	var first error
	for _, f := range m.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	m.files = nil
	return first
}

// Tensor returns the named tensor.
func (m *Model) Tensor(name string) (Tensor, bool) {
	for _, t := range m.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Index is the JSON form of model.safetensors.index.json.
type Index struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// Shards lists the shard files the index's weight map names, sorted, once each.
// Each must be a plain file name (no directory), so an index cannot reach
// outside its folder; path names the index file in errors.
func (idx *Index) Shards(path string) ([]string, error) {
	set := map[string]bool{}
	for _, s := range idx.WeightMap {
		if s == "" || filepath.Base(s) != s {
			return nil, fmt.Errorf("%s: shard name %q must be a plain file name", path, s)
		}
		set[s] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

// OpenModel opens a .safetensors file, or a folder holding model.safetensors or a
// sharded checkpoint with model.safetensors.index.json.
func OpenModel(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	m := &Model{}
	if !st.IsDir() {
		if err := m.add(path); err != nil {
			return nil, err
		}
		return m, nil
	}
	m.Dir = path
	idxPath := filepath.Join(path, IndexName)
	if _, err := os.Stat(idxPath); err != nil {
		single := filepath.Join(path, SingleName)
		if _, err2 := os.Stat(single); err2 != nil {
			return nil, fmt.Errorf("%s: neither %s nor %s found", path, SingleName, IndexName)
		}
		if err := m.add(single); err != nil {
			return nil, err
		}
		return m, nil
	}
	idx, err := readIndex(idxPath)
	if err != nil {
		return nil, err
	}
	shards, err := idx.Shards(idxPath)
	if err != nil {
		return nil, err
	}
	for _, s := range shards {
		if err := m.add(filepath.Join(path, s)); err != nil {
			m.Close()
			return nil, err
		}
	}
	// The index and the shard headers must agree in both directions.
	have := map[string]string{}
	for _, t := range m.Tensors {
		if prev, dup := have[t.Name]; dup {
			m.Close()
			return nil, fmt.Errorf("%s: tensor %q appears in both %s and %s", path, t.Name, prev, filepath.Base(t.Source))
		}
		have[t.Name] = filepath.Base(t.Source)
	}
	for name, shard := range idx.WeightMap {
		if have[name] != shard {
			m.Close()
			return nil, fmt.Errorf("%s: tensor %q is mapped to %s but not found there", idxPath, name, shard)
		}
	}
	if len(have) != len(idx.WeightMap) {
		for name, shard := range have {
			if _, ok := idx.WeightMap[name]; !ok {
				m.Close()
				return nil, fmt.Errorf("%s: tensor %q in %s is missing from the index", idxPath, name, shard)
			}
		}
	}
	return m, nil
}

func readIndex(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(data) > maxIndexBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxIndexBytes)
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: empty weight_map", path)
	}
	return &idx, nil
}

func (m *Model) add(path string) error {
	f, fh, err := Open(path)
	if err != nil {
		return err
	}
	m.files = append(m.files, fh)
	for _, t := range f.Tensors {
		m.Tensors = append(m.Tensors, Tensor{TensorInfo: t, File: fh, Source: path})
	}
	return nil
}

// ShardName is the conventional name of shard i (0-based) of n.
func ShardName(i, n int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, n)
}

// PlanShards splits tensors, in order, into groups whose data stays under maxBytes
// (a tensor larger than maxBytes gets a shard of its own). maxBytes <= 0 means one shard.
func PlanShards(tensors []TensorInfo, maxBytes int64) ([][]TensorInfo, error) {
	var out [][]TensorInfo
	var cur []TensorInfo
	var size int64
	for _, t := range tensors {
		es, err := t.DType.Size()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", t.Name, err)
		}
		n := t.Elements() * es
		if maxBytes > 0 && len(cur) > 0 && size+n > maxBytes {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, t)
		size += n
	}
	if len(cur) > 0 || len(out) == 0 {
		out = append(out, cur)
	}
	return out, nil
}

// IndexJSON renders the index for the given shards (deterministic: keys sorted).
func IndexJSON(shards [][]TensorInfo) ([]byte, error) {
	idx := Index{Metadata: map[string]any{}, WeightMap: map[string]string{}}
	var total int64
	for i, s := range shards {
		for _, t := range s {
			es, err := t.DType.Size()
			if err != nil {
				return nil, err
			}
			total += t.Elements() * es
			idx.WeightMap[t.Name] = ShardName(i, len(shards))
		}
	}
	idx.Metadata["total_size"] = total
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
