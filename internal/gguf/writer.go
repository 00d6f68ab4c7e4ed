package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Writer writes a GGUF file sequentially: the header when it is created, then each tensor's data in the
// declared order, then Close. Nothing is buffered beyond a small write buffer.
type Writer struct {
	w         *bufio.Writer
	pos       int64
	align     int64
	tensors   []TensorInfo
	next      int   // index of the tensor being written
	remaining int64 // bytes still owed to tensors[next]
	err       error
}

// NewWriter writes the header for the given metadata and tensors (Name, Shape and Type are used; offsets are
// computed in the given order). Metadata is written in the given order, so the same input gives the same bytes.
func NewWriter(w io.Writer, kvs []KV, tensors []TensorInfo) (*Writer, error) {
	gw := &Writer{w: bufio.NewWriterSize(w, 1<<20), align: 32}
	seen := map[string]bool{}
	for _, kv := range kvs {
		if seen[kv.Key] {
			return nil, fmt.Errorf("gguf: metadata key %q given twice", kv.Key)
		}
		seen[kv.Key] = true
		if kv.Key == "general.alignment" {
			a, ok := asUint(kv.Value)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("gguf: general.alignment must be a power of two, got %v", kv.Value)
			}
			gw.align = int64(a)
		}
	}
	names := map[string]bool{}
	var offset int64
	for _, t := range tensors {
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: tensor %q given twice", t.Name)
		}
		names[t.Name] = true
		if len(t.Shape) == 0 || len(t.Shape) > MaxDims {
			return nil, fmt.Errorf("gguf: tensor %q has %d dimensions", t.Name, len(t.Shape))
		}
		for _, d := range t.Shape {
			if d <= 0 {
				return nil, fmt.Errorf("gguf: tensor %q has dimension %d", t.Name, d)
			}
		}
		if t.Shape[0]%max(t.Type.BlockSize(), 1) != 0 {
			return nil, fmt.Errorf("gguf: tensor %q: row of %d is not a whole number of %s blocks", t.Name, t.Shape[0], t.Type)
		}
		size, err := t.Type.BytesFor(t.Elements())
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		t.Shape = append([]int64(nil), t.Shape...)
		t.Size, t.Offset = size, offset
		offset = alignUp(offset+size, gw.align)
		gw.tensors = append(gw.tensors, t)
	}
	gw.bytes([]byte(Magic))
	gw.u32(3)
	gw.u64(uint64(len(tensors)))
	gw.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		gw.str(kv.Key)
		if err := gw.value(kv.Value); err != nil {
			return nil, fmt.Errorf("gguf: metadata %q: %w", kv.Key, err)
		}
	}
	for _, t := range gw.tensors {
		gw.str(t.Name)
		gw.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			gw.u64(uint64(d))
		}
		gw.u32(uint32(t.Type))
		gw.u64(uint64(t.Offset))
	}
	gw.pad()
	if len(gw.tensors) > 0 {
		gw.remaining = gw.tensors[0].Size
	}
	return gw, gw.err
}

// Tensors returns the tensor infos with their sizes and offsets (relative to the data section).
func (w *Writer) Tensors() []TensorInfo { return w.tensors }

// Write appends tensor data: the bytes of the tensors in declared order, in chunks of any size. Padding
// between tensors is inserted automatically.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 && w.err == nil {
		if w.next >= len(w.tensors) {
			return written, errors.New("gguf: more tensor data than the declared tensors hold")
		}
		n := int64(len(p))
		if n > w.remaining {
			n = w.remaining
		}
		w.bytes(p[:n])
		p, written, w.remaining = p[n:], written+int(n), w.remaining-n
		if w.remaining == 0 {
			w.pad()
			w.next++
			if w.next < len(w.tensors) {
				w.remaining = w.tensors[w.next].Size
			}
		}
	}
	return written, w.err
}

// WriteTensor writes the whole data of the named tensor, which must be the next one in the declared order.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.next >= len(w.tensors) {
		return fmt.Errorf("gguf: tensor %q written after all declared tensors", name)
	}
	t := w.tensors[w.next]
	if t.Name != name || w.remaining != t.Size {
		return fmt.Errorf("gguf: tensor %q written out of order (next is %q)", name, t.Name)
	}
	if int64(len(data)) != t.Size {
		return fmt.Errorf("gguf: tensor %q: %d bytes given, %s %v needs %d", name, len(data), t.Type, t.Shape, t.Size)
	}
	_, err := w.Write(data)
	return err
}

// Close checks that every declared tensor was written in full and flushes.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.next < len(w.tensors) {
		return fmt.Errorf("gguf: tensor %q was not written in full", w.tensors[w.next].Name)
	}
	return w.w.Flush()
}

func (w *Writer) bytes(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.pos += int64(n)
	w.err = err
}

func (w *Writer) pad() {
	var zeros [64]byte
	for p := alignUp(w.pos, w.align) - w.pos; p > 0 && w.err == nil; {
		n := min(p, int64(len(zeros)))
		w.bytes(zeros[:n])
		p -= n
	}
}

func (w *Writer) u32(v uint32) { w.bytes(binary.LittleEndian.AppendUint32(nil, v)) }
func (w *Writer) u64(v uint64) { w.bytes(binary.LittleEndian.AppendUint64(nil, v)) }
func (w *Writer) str(s string) { w.u64(uint64(len(s))); w.bytes([]byte(s)) }

func (w *Writer) value(v any) error {
	switch x := v.(type) {
	case uint8:
		w.u32(valUint8)
		w.bytes([]byte{x})
	case int8:
		w.u32(valInt8)
		w.bytes([]byte{byte(x)})
	case bool:
		w.u32(valBool)
		w.bytes([]byte{boolByte(x)})
	case uint16:
		w.u32(valUint16)
		w.bytes(binary.LittleEndian.AppendUint16(nil, x))
	case int16:
		w.u32(valInt16)
		w.bytes(binary.LittleEndian.AppendUint16(nil, uint16(x)))
	case uint32:
		w.u32(valUint32)
		w.u32(x)
	case int32:
		w.u32(valInt32)
		w.u32(uint32(x))
	case float32:
		w.u32(valFloat32)
		w.u32(math.Float32bits(x))
	case uint64:
		w.u32(valUint64)
		w.u64(x)
	case int64:
		w.u32(valInt64)
		w.u64(uint64(x))
	case float64:
		w.u32(valFloat64)
		w.u64(math.Float64bits(x))
	case string:
		w.u32(valString)
		w.str(x)
	case []string:
		writeArray(w, valString, x, w.str)
	case []uint8:
		writeArray(w, valUint8, x, func(v uint8) { w.bytes([]byte{v}) })
	case []int8:
		writeArray(w, valInt8, x, func(v int8) { w.bytes([]byte{byte(v)}) })
	case []bool:
		writeArray(w, valBool, x, func(v bool) { w.bytes([]byte{boolByte(v)}) })
	case []uint16:
		writeArray(w, valUint16, x, func(v uint16) { w.bytes(binary.LittleEndian.AppendUint16(nil, v)) })
	case []int16:
		writeArray(w, valInt16, x, func(v int16) { w.bytes(binary.LittleEndian.AppendUint16(nil, uint16(v))) })
	case []uint32:
		writeArray(w, valUint32, x, w.u32)
	case []int32:
		writeArray(w, valInt32, x, func(v int32) { w.u32(uint32(v)) })
	case []float32:
		writeArray(w, valFloat32, x, func(v float32) { w.u32(math.Float32bits(v)) })
	case []uint64:
		writeArray(w, valUint64, x, w.u64)
	case []int64:
		writeArray(w, valInt64, x, func(v int64) { w.u64(uint64(v)) })
	case []float64:
		writeArray(w, valFloat64, x, func(v float64) { w.u64(math.Float64bits(v)) })
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
	return nil
}

func writeArray[T any](w *Writer, elem uint32, xs []T, put func(T)) {
	w.u32(valArray)
	w.u32(elem)
	w.u64(uint64(len(xs)))
	for _, x := range xs {
		put(x)
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
