package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// Writer writes one safetensors file sequentially to any io.Writer, so the caller
// can hash or count bytes on the way. Tensors are written in the declared order;
// a tensor's bytes may arrive in several WriteTensor calls.
type Writer struct {
	w       io.Writer
	tensors []TensorInfo
	cur     int
	done    int64 // bytes of tensors[cur] written
}

// header builds the deterministic JSON header (metadata keys sorted, tensors in
// the given order, padded with spaces to a multiple of 8 like the reference writer).
func header(metadata map[string]string, tensors []TensorInfo) ([]byte, []TensorInfo, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kj, _ := json.Marshal(k)
			vj, _ := json.Marshal(metadata[k])
			b.Write(kj)
			b.WriteByte(':')
			b.Write(vj)
		}
		b.WriteByte('}')
		first = false
	}
	out := make([]TensorInfo, len(tensors))
	seen := make(map[string]bool, len(tensors))
	var off int64
	for i, t := range tensors {
		if t.Name == "" || t.Name == "__metadata__" {
			return nil, nil, fmt.Errorf("tensor %d: invalid name %q", i, t.Name)
		}
		if seen[t.Name] {
			return nil, nil, fmt.Errorf("tensor %q declared twice", t.Name)
		}
		seen[t.Name] = true
		es, err := t.DType.Size()
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", t.Name, err)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
		}
		size := t.Elements() * es
		if !first {
			b.WriteByte(',')
		}
		first = false
		nj, _ := json.Marshal(t.Name)
		b.Write(nj)
		b.WriteString(`:{"dtype":"`)
		b.WriteString(string(t.DType))
		b.WriteString(`","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		b.WriteString(`],"data_offsets":[`)
		b.WriteString(strconv.FormatInt(off, 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(off+size, 10))
		b.WriteString("]}")
		out[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: append([]int64(nil), t.Shape...), Offset: off, Size: size}
		off += size
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderBytes {
		return nil, nil, fmt.Errorf("header of %d bytes exceeds limit %d", b.Len(), MaxHeaderBytes)
	}
	return b.Bytes(), out, nil
}

// FileSize returns the size of the file a Writer produces for these tensors.
func FileSize(metadata map[string]string, tensors []TensorInfo) (int64, error) {
	h, ts, err := header(metadata, tensors)
	if err != nil {
		return 0, err
	}
	n := int64(8 + len(h))
	for _, t := range ts {
		n += t.Size
	}
	return n, nil
}

// NewWriter writes the header at once. Only Name, DType and Shape of tensors are used.
func NewWriter(w io.Writer, metadata map[string]string, tensors []TensorInfo) (*Writer, error) {
	h, ts, err := header(metadata, tensors)
	if err != nil {
		return nil, err
	}
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(len(h)))
	if _, err := w.Write(lb[:]); err != nil {
		return nil, err
	}
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	return &Writer{w: w, tensors: ts}, nil
}

// WriteTensor appends data to the named tensor, which must be the current one in
// the declared order.
func (w *Writer) WriteTensor(name string, data []byte) error {
	for w.cur < len(w.tensors) && w.done == w.tensors[w.cur].Size && w.tensors[w.cur].Name != name {
		w.cur++
		w.done = 0
	}
	if w.cur >= len(w.tensors) {
		return fmt.Errorf("tensor %q: all declared tensors are already written", name)
	}
	t := w.tensors[w.cur]
	if t.Name != name {
		return fmt.Errorf("tensor %q written out of order: %q is next (%d of %d bytes written)", name, t.Name, w.done, t.Size)
	}
	if w.done+int64(len(data)) > t.Size {
		return fmt.Errorf("tensor %q: %d bytes written, more than its size %d", name, w.done+int64(len(data)), t.Size)
	}
	if _, err := w.w.Write(data); err != nil {
		return err
	}
	w.done += int64(len(data))
	return nil
}

// Close checks that every declared tensor was written in full. It does not close
// the underlying writer.
func (w *Writer) Close() error {
	for ; w.cur < len(w.tensors); w.cur++ {
		t := w.tensors[w.cur]
		if w.done != t.Size {
			return fmt.Errorf("tensor %q: %d of %d bytes written", t.Name, w.done, t.Size)
		}
		w.done = 0
	}
	return nil
}
