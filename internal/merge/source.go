package merge

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// elemType is a tensor element type of either format.
type elemType struct {
	name       string
	st         safetensors.DType // set for F32/F16/BF16
	gg         gguf.Type
	block      int64 // elements per block (1 for plain types)
	blockBytes int64
}

func (e elemType) isFloat() bool { return e.st != "" }

func (e elemType) bytesFor(n int64) int64 { return n / e.block * e.blockBytes }

var (
	typeF32  = elemType{name: "F32", st: safetensors.F32, gg: gguf.TypeF32, block: 1, blockBytes: 4}
	typeF16  = elemType{name: "F16", st: safetensors.F16, gg: gguf.TypeF16, block: 1, blockBytes: 2}
	typeBF16 = elemType{name: "BF16", st: safetensors.BF16, gg: gguf.TypeBF16, block: 1, blockBytes: 2}
)

func parseOutType(s string) (elemType, error) {
	dt, err := safetensors.ParseDType(s)
	if err != nil {
		return elemType{}, fmt.Errorf("out_type: %v", err)
	}
	return floatType(dt), nil
}

func floatType(dt safetensors.DType) elemType {
	switch dt {
	case safetensors.F32:
		return typeF32
	case safetensors.F16:
		return typeF16
	}
	return typeBF16
}

// dequantize widens a quantized GGUF block run to float32. It is provided by the
// ggml bridge (dequant_ggml.go); nil means quantized inputs are unsupported.
var dequantize func(t gguf.Type, src []byte, dst []float32) error

// decodeFloat and encodeFloat convert F32/F16/BF16; the ggml bridge replaces the
// portable Go versions with its vectorised kernels (15-80x faster, same rounding).
var (
	decodeFloat = safetensors.Decode
	encodeFloat = safetensors.Encode
)

func (e elemType) decode(src []byte, dst []float32) error {
	if e.st != "" {
		return decodeFloat(e.st, src, dst)
	}
	if dequantize == nil {
		return fmt.Errorf("%s tensors cannot be read: no dequantizer linked", e.name)
	}
	return dequantize(e.gg, src, dst)
}

// srcTensor is one tensor of one input model.
type srcTensor struct {
	name   string
	shape  []int64 // in the format's own order
	rowLen int64   // contiguous dimension
	typ    elemType
	r      io.ReaderAt
	offset int64
	size   int64
	path   string // input path, for error messages
}

func (t *srcTensor) elements() int64 {
	n := int64(1)
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// readChunk decodes elements [start, start+len(dst)) into dst, checking for NaN/Inf.
// start and len(dst) are whole blocks. raw is scratch of at least the chunk's bytes.
func (t *srcTensor) readChunk(start int64, dst []float32, raw []byte) ([]byte, error) {
	n := int64(len(dst))
	nb := t.typ.bytesFor(n)
	if int64(cap(raw)) < nb {
		raw = make([]byte, nb)
	}
	raw = raw[:nb]
	if _, err := t.r.ReadAt(raw, t.offset+t.typ.bytesFor(start)); err != nil {
		return raw, fmt.Errorf("%s: tensor %q: reading elements %d..%d: %v", t.path, t.name, start, start+n, err)
	}
	if err := t.typ.decode(raw, dst); err != nil {
		return raw, fmt.Errorf("%s: tensor %q: %v", t.path, t.name, err)
	}
	if i := nonFinite(dst); i >= 0 {
		return raw, fmt.Errorf("%s: tensor %q: non-finite value %v at element %d", t.path, t.name, dst[i], start+i)
	}
	return raw, nil
}

// inputModel is one opened input: a GGUF file or a safetensors checkpoint.
type inputModel struct {
	path    string
	format  string // "gguf" or "safetensors"
	tensors []*srcTensor
	byName  map[string]*srcTensor
	gg      *gguf.File         // gguf only
	st      *safetensors.Model // safetensors only
	closer  io.Closer
}

func (m *inputModel) Close() error {
	if m.closer != nil {
		return m.closer.Close()
	}
	return nil
}

func isGGUFPath(p string) bool { return strings.EqualFold(filepath.Ext(p), ".gguf") }

func openInput(path string) (*inputModel, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("input %s: %v", path, err)
	}
	m := &inputModel{path: path, byName: map[string]*srcTensor{}}
	if !st.IsDir() && isGGUFPath(path) {
		f, fh, err := gguf.Open(path)
		if err != nil {
			return nil, fmt.Errorf("input %s: %v", path, err)
		}
		m.format, m.gg, m.closer = "gguf", f, fh
		for _, ti := range f.Tensors {
			var et elemType
			switch ti.Type {
			case gguf.TypeF32:
				et = typeF32
			case gguf.TypeF16:
				et = typeF16
			case gguf.TypeBF16:
				et = typeBF16
			default:
				if !ti.Type.Known() || ti.Type.BlockSize() < 1 {
					fh.Close()
					return nil, fmt.Errorf("input %s: tensor %q: unsupported type %s", path, ti.Name, ti.Type)
				}
				bb, err := ti.Type.BytesFor(ti.Type.BlockSize())
				if err != nil {
					fh.Close()
					return nil, fmt.Errorf("input %s: tensor %q: %v", path, ti.Name, err)
				}
				et = elemType{name: ti.Type.String(), gg: ti.Type, block: ti.Type.BlockSize(), blockBytes: bb}
			}
			t := &srcTensor{name: ti.Name, shape: ti.Shape, rowLen: ti.Shape[0], typ: et, r: fh, offset: ti.Offset, size: ti.Size, path: path}
			if t.rowLen%et.block != 0 {
				fh.Close()
				return nil, fmt.Errorf("input %s: tensor %q: row of %d is not a whole number of %s blocks", path, ti.Name, t.rowLen, et.name)
			}
			m.add(t)
		}
		return m, nil
	}
	sm, err := safetensors.OpenModel(path)
	if err != nil {
		return nil, fmt.Errorf("input %s: %v", path, err)
	}
	m.format, m.st, m.closer = "safetensors", sm, closerFunc(sm.Close)
	for _, ti := range sm.Tensors {
		if !ti.DType.IsFloat() {
			sm.Close()
			return nil, fmt.Errorf("input %s: tensor %q: dtype %s is not a float type", path, ti.Name, ti.DType)
		}
		row := int64(1)
		if len(ti.Shape) > 0 {
			row = ti.Shape[len(ti.Shape)-1]
		}
		m.add(&srcTensor{name: ti.Name, shape: ti.Shape, rowLen: row, typ: floatType(ti.DType), r: ti.File, offset: ti.Offset, size: ti.Size, path: ti.Source})
	}
	return m, nil
}

func (m *inputModel) add(t *srcTensor) {
	m.tensors = append(m.tensors, t)
	m.byName[t.name] = t
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
