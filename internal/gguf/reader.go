package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// MaxDims is the most dimensions a ggml tensor has.
const MaxDims = 4

// Value types of GGUF metadata.
const (
	valUint8   uint32 = 0
	valInt8    uint32 = 1
	valUint16  uint32 = 2
	valInt16   uint32 = 3
	valUint32  uint32 = 4
	valInt32   uint32 = 5
	valFloat32 uint32 = 6
	valBool    uint32 = 7
	valString  uint32 = 8
	valArray   uint32 = 9
	valUint64  uint32 = 10
	valInt64   uint32 = 11
	valFloat64 uint32 = 12
)

// maxString bounds one metadata string (chat templates are the longest seen in practice: tens of KiB).
const maxString = 64 << 20

// KV is one metadata entry. Value is one of uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32,
// float64, bool, string, or a slice of one of those.
type KV struct {
	Key   string
	Value any
}

// TensorInfo describes one tensor. Shape is in ggml order: Shape[0] is the contiguous dimension.
type TensorInfo struct {
	Name   string
	Shape  []int64
	Type   Type
	Offset int64 // absolute offset of the data in the file (reader) or relative to the data section (writer)
	Size   int64 // bytes
}

// Elements is the number of values in the tensor.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is the parsed header of a GGUF file.
type File struct {
	Version    uint32
	KVs        []KV
	Tensors    []TensorInfo
	Alignment  int64
	DataOffset int64 // start of the tensor data section
	index      map[string]int
	kvIndex    map[string]int
}

// Open parses the header of the GGUF file at path. The caller closes the returned file.
func Open(path string) (*File, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	g, err := Read(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, f, nil
}

// Lookup returns the value stored under key.
func (f *File) Lookup(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KVs[i].Value, true
}

// String returns a string value.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Lookup(key)
	s, isString := v.(string)
	return s, ok && isString
}

// Uint returns an unsigned integer value of any width (negative signed values are rejected).
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	return asUint(v)
}

// asUint converts an integer metadata value of any width to uint64; negative values do not convert.
func asUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Float returns a floating-point value (float32 or float64).
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Lookup(key)
	switch x := v.(type) {
	case float32:
		return float64(x), ok
	case float64:
		return x, ok
	}
	return 0, false
}

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// ReadTensor reads the named tensor's bytes from r (the file the header was read from).
func (f *File) ReadTensor(r io.ReaderAt, name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: no tensor %q", name)
	}
	buf := make([]byte, t.Size)
	if _, err := r.ReadAt(buf, t.Offset); err != nil {
		return nil, fmt.Errorf("gguf: reading tensor %q: %w", name, err)
	}
	return buf, nil
}

// headerReader reads little-endian values and knows how many bytes are left in the file.
type headerReader struct {
	r    *bufio.Reader
	pos  int64
	size int64
	buf  [8]byte
}

var errTruncated = errors.New("file is truncated")

func (h *headerReader) read(n int) ([]byte, error) {
	if int64(n) > h.size-h.pos {
		return nil, errTruncated
	}
	b := h.buf[:n]
	if _, err := io.ReadFull(h.r, b); err != nil {
		return nil, errTruncated
	}
	h.pos += int64(n)
	return b, nil
}

func (h *headerReader) u32() (uint32, error) {
	b, err := h.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (h *headerReader) u64() (uint64, error) {
	b, err := h.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a length and checks that count*minBytes more bytes can still be in the file.
func (h *headerReader) count(what string, minBytes int64) (int64, error) {
	n, err := h.u64()
	if err != nil {
		return 0, err
	}
	if minBytes < 1 {
		minBytes = 1
	}
	if n > uint64(h.size-h.pos)/uint64(minBytes) {
		return 0, fmt.Errorf("%s count %d does not fit in the file", what, n)
	}
	return int64(n), nil
}

func (h *headerReader) str() (string, error) {
	n, err := h.count("string byte", 1)
	if err != nil {
		return "", err
	}
	if n > maxString {
		return "", fmt.Errorf("string of %d bytes is longer than the %d limit", n, maxString)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		return "", errTruncated
	}
	h.pos += n
	return string(b), nil
}

// Read parses the header of a GGUF file of the given size.
func Read(r io.ReaderAt, size int64) (*File, error) {
	h := &headerReader{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10), size: size}
	magic, err := h.read(4)
	if err != nil || string(magic) != Magic {
		return nil, errors.New("gguf: not a GGUF file (bad magic)")
	}
	f := &File{index: map[string]int{}, kvIndex: map[string]int{}}
	if f.Version, err = h.u32(); err != nil {
		return nil, fmt.Errorf("gguf: header: %w", err)
	}
	if f.Version < 2 || f.Version > 3 {
		return nil, fmt.Errorf("gguf: unsupported version %d (want 2 or 3)", f.Version)
	}
	// A tensor info takes at least 8+4+8+4+8 bytes, a KV at least 8+4+1.
	nTensors, err := h.count("tensor", 32)
	if err != nil {
		return nil, fmt.Errorf("gguf: header: %w", err)
	}
	nKV, err := h.count("metadata", 13)
	if err != nil {
		return nil, fmt.Errorf("gguf: header: %w", err)
	}
	f.Alignment = 32
	for i := int64(0); i < nKV; i++ {
		key, err := h.str()
		if err != nil {
			return nil, fmt.Errorf("gguf: metadata key %d: %w", i, err)
		}
		typ, err := h.u32()
		if err != nil {
			return nil, fmt.Errorf("gguf: metadata %q: %w", key, err)
		}
		v, err := h.value(typ)
		if err != nil {
			return nil, fmt.Errorf("gguf: metadata %q: %w", key, err)
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("gguf: metadata key %q appears twice", key)
		}
		f.kvIndex[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{key, v})
	}
	if a, ok := f.Uint("general.alignment"); ok {
		if a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, fmt.Errorf("gguf: general.alignment %d is not a power of two up to 1 MiB", a)
		}
		f.Alignment = int64(a)
	}
	for i := int64(0); i < nTensors; i++ {
		t, err := h.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor info %d: %w", i, err)
		}
		if _, dup := f.index[t.Name]; dup {
			return nil, fmt.Errorf("gguf: tensor %q appears twice", t.Name)
		}
		f.index[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(h.pos, f.Alignment)
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("gguf: tensor %q: offset %d is not aligned to %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > size || t.Size > size-f.DataOffset-t.Offset {
			return nil, fmt.Errorf("gguf: tensor %q: data (%d bytes at %d) runs past the end of the file (%d bytes): file is truncated", t.Name, t.Size, f.DataOffset+t.Offset, size)
		}
		t.Offset += f.DataOffset
	}
	return f, nil
}

func (h *headerReader) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = h.str(); err != nil {
		return t, err
	}
	dims, err := h.u32()
	if err != nil {
		return t, err
	}
	if dims == 0 || dims > MaxDims {
		return t, fmt.Errorf("%q has %d dimensions (want 1..%d)", t.Name, dims, MaxDims)
	}
	t.Shape = make([]int64, dims)
	n := int64(1)
	for d := range t.Shape {
		v, err := h.u64()
		if err != nil {
			return t, err
		}
		if v == 0 || v > 1<<40 || n > (1<<50)/int64(v) {
			return t, fmt.Errorf("%q has an invalid dimension %d", t.Name, v)
		}
		t.Shape[d] = int64(v)
		n *= int64(v)
	}
	typ, err := h.u32()
	if err != nil {
		return t, err
	}
	t.Type = Type(typ)
	if !t.Type.Known() {
		return t, fmt.Errorf("%q has unsupported type %s", t.Name, t.Type)
	}
	if t.Shape[0]%t.Type.BlockSize() != 0 {
		return t, fmt.Errorf("%q: row of %d is not a whole number of %s blocks", t.Name, t.Shape[0], t.Type)
	}
	if t.Size, err = t.Type.BytesFor(n); err != nil {
		return t, fmt.Errorf("%q: %w", t.Name, err)
	}
	off, err := h.u64()
	if err != nil {
		return t, err
	}
	if off > math.MaxInt64/2 {
		return t, fmt.Errorf("%q has an invalid offset %d", t.Name, off)
	}
	t.Offset = int64(off)
	return t, nil
}

func (h *headerReader) value(typ uint32) (any, error) {
	switch typ {
	case valUint8, valInt8, valBool:
		b, err := h.read(1)
		if err != nil {
			return nil, err
		}
		switch typ {
		case valUint8:
			return b[0], nil
		case valInt8:
			return int8(b[0]), nil
		}
		if b[0] > 1 {
			return nil, fmt.Errorf("invalid bool %d", b[0])
		}
		return b[0] == 1, nil
	case valUint16, valInt16:
		b, err := h.read(2)
		if err != nil {
			return nil, err
		}
		v := binary.LittleEndian.Uint16(b)
		if typ == valInt16 {
			return int16(v), nil
		}
		return v, nil
	case valUint32, valInt32, valFloat32:
		v, err := h.u32()
		if err != nil {
			return nil, err
		}
		switch typ {
		case valInt32:
			return int32(v), nil
		case valFloat32:
			return math.Float32frombits(v), nil
		}
		return v, nil
	case valUint64, valInt64, valFloat64:
		v, err := h.u64()
		if err != nil {
			return nil, err
		}
		switch typ {
		case valInt64:
			return int64(v), nil
		case valFloat64:
			return math.Float64frombits(v), nil
		}
		return v, nil
	case valString:
		return h.str()
	case valArray:
		return h.array()
	}
	return nil, fmt.Errorf("unknown value type %d", typ)
}

func (h *headerReader) array() (any, error) {
	et, err := h.u32()
	if err != nil {
		return nil, err
	}
	width := map[uint32]int64{valUint8: 1, valInt8: 1, valBool: 1, valUint16: 2, valInt16: 2, valUint32: 4,
		valInt32: 4, valFloat32: 4, valUint64: 8, valInt64: 8, valFloat64: 8, valString: 8}[et]
	if width == 0 {
		return nil, fmt.Errorf("array of unsupported element type %d", et)
	}
	n, err := h.count("array element", width)
	if err != nil {
		return nil, err
	}
	switch et {
	case valString:
		return readSlice(h, n, func() (string, error) { return h.str() })
	case valUint8:
		return readSlice(h, n, func() (uint8, error) { v, err := h.value(et); return asT[uint8](v, err) })
	case valInt8:
		return readSlice(h, n, func() (int8, error) { v, err := h.value(et); return asT[int8](v, err) })
	case valBool:
		return readSlice(h, n, func() (bool, error) { v, err := h.value(et); return asT[bool](v, err) })
	case valUint16:
		return readSlice(h, n, func() (uint16, error) { v, err := h.value(et); return asT[uint16](v, err) })
	case valInt16:
		return readSlice(h, n, func() (int16, error) { v, err := h.value(et); return asT[int16](v, err) })
	case valUint32:
		return readSlice(h, n, func() (uint32, error) { v, err := h.value(et); return asT[uint32](v, err) })
	case valInt32:
		return readSlice(h, n, func() (int32, error) { v, err := h.value(et); return asT[int32](v, err) })
	case valFloat32:
		return readSlice(h, n, func() (float32, error) { v, err := h.value(et); return asT[float32](v, err) })
	case valUint64:
		return readSlice(h, n, func() (uint64, error) { v, err := h.value(et); return asT[uint64](v, err) })
	case valInt64:
		return readSlice(h, n, func() (int64, error) { v, err := h.value(et); return asT[int64](v, err) })
	default: // valFloat64
		return readSlice(h, n, func() (float64, error) { v, err := h.value(et); return asT[float64](v, err) })
	}
}

func asT[T any](v any, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

func readSlice[T any](h *headerReader, n int64, next func() (T, error)) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		v, err := next()
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }
