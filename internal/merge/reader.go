package merge

import "fmt"

// Reader gives other engines (e.g. internal/diversity) the merge's own
// tensor reading: a GGUF file or safetensors checkpoint opened the same way,
// every dtype the merge reads (F32, F16, BF16, ggml's quantized types) widened
// to float32 chunk by chunk with the same conversion kernels, so memory stays
// bounded by the chunk, not the model.
type Reader struct {
	m *inputModel
}

// TensorMeta describes one tensor a Reader can stream.
type TensorMeta struct {
	Name     string
	Shape    []int64 // in the file format's own order
	Elements int64
	Type     string // "F32", "F16", "BF16", "Q4_K", ...
	// Block is the element count chunks must be a multiple of (1 for floats).
	Block int64
}

// ChunkAlign is a chunk length (in elements) that is a whole number of blocks
// of every type a Reader reads.
const ChunkAlign = 256

// OpenReader opens a model as the merge does (GGUF file, safetensors file or folder).
func OpenReader(path string) (*Reader, error) {
	m, err := openInput(path)
	if err != nil {
		return nil, err
	}
	return &Reader{m: m}, nil
}

// Close releases the model's files.
func (r *Reader) Close() error { return r.m.Close() }

// Format is "gguf" or "safetensors".
func (r *Reader) Format() string { return r.m.format }

// Tensors lists the tensors in file order.
func (r *Reader) Tensors() []TensorMeta {
	out := make([]TensorMeta, len(r.m.tensors))
	for i, t := range r.m.tensors {
		out[i] = TensorMeta{Name: t.name, Shape: append([]int64(nil), t.shape...), Elements: t.elements(), Type: t.typ.name, Block: t.typ.block}
	}
	return out
}

// ReadFloat32 decodes elements [start, start+len(dst)) of tensor name into
// dst, reusing raw as scratch (the grown scratch is returned). start and
// len(dst) must be whole blocks (multiples of ChunkAlign always are) or reach
// the tensor's end. A non-finite value is an error naming file, tensor and element.
func (r *Reader) ReadFloat32(name string, start int64, dst []float32, raw []byte) ([]byte, error) {
	t, ok := r.m.byName[name]
	if !ok {
		return raw, fmt.Errorf("%s: no tensor %q", r.m.path, name)
	}
	n := int64(len(dst))
	if start < 0 || start+n > t.elements() {
		return raw, fmt.Errorf("%s: tensor %q: elements %d..%d outside its %d", r.m.path, name, start, start+n, t.elements())
	}
	if start%t.typ.block != 0 || n%t.typ.block != 0 {
		return raw, fmt.Errorf("%s: tensor %q: elements %d..%d are not whole %s blocks of %d", r.m.path, name, start, start+n, t.typ.name, t.typ.block)
	}
	return t.readChunk(start, dst, raw)
}
