package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// MaxHeaderBytes bounds the JSON header a reader accepts (the reference
// implementation uses the same 100 MB limit).
const MaxHeaderBytes = 100 << 20

// File is the parsed header of one safetensors file. Tensors are in file order.
type File struct {
	Path     string // for error messages only
	Metadata map[string]string
	Tensors  []TensorInfo
	DataBase int64 // absolute offset of the byte buffer
	Size     int64
}

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Read parses and validates the header of a safetensors file of the given size.
// name is used in error messages.
func Read(r io.ReaderAt, size int64, name string) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("%s: truncated safetensors file (%d bytes, need at least 8)", name, size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("%s: reading header length: %w", name, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("%s: header length %d exceeds limit %d", name, n, MaxHeaderBytes)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("%s: truncated: header length %d but only %d bytes follow", name, n, size-8)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("%s: reading header: %w", name, err)
	}
	raw := map[string]json.RawMessage{}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: header is not a JSON object: %v", name, err)
	}
	f := &File{Path: name, DataBase: 8 + int64(n), Size: size}
	dataLen := size - f.DataBase
	for key, msg := range raw {
		if key == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%s: __metadata__ must map strings to strings: %v", name, err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: bad header entry: %v", name, key, err)
		}
		dt := DType(e.DType)
		es, err := dt.Size()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %v", name, key, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("%s: tensor %q: data_offsets must have 2 entries, got %d", name, key, len(e.DataOffsets))
		}
		elems := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && elems > math.MaxInt64/4/d) {
				return nil, fmt.Errorf("%s: tensor %q: invalid shape %v", name, key, e.Shape)
			}
			elems *= d
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || end < b || end > dataLen {
			return nil, fmt.Errorf("%s: tensor %q: data_offsets [%d,%d] outside the %d-byte data section (truncated file?)", name, key, b, end, dataLen)
		}
		if end-b != elems*es {
			return nil, fmt.Errorf("%s: tensor %q: %d bytes for shape %v of %s (want %d)", name, key, end-b, e.Shape, dt, elems*es)
		}
		f.Tensors = append(f.Tensors, TensorInfo{Name: key, DType: dt, Shape: e.Shape, Offset: f.DataBase + b, Size: end - b})
	}
	sort.Slice(f.Tensors, func(i, j int) bool {
		if f.Tensors[i].Offset != f.Tensors[j].Offset {
			return f.Tensors[i].Offset < f.Tensors[j].Offset
		}
		return f.Tensors[i].Name < f.Tensors[j].Name
	})
	for i := 1; i < len(f.Tensors); i++ {
		p, c := f.Tensors[i-1], f.Tensors[i]
		if p.Offset+p.Size > c.Offset {
			return nil, fmt.Errorf("%s: tensors %q and %q overlap", name, p.Name, c.Name)
		}
	}
	return f, nil
}

// Open opens and parses one safetensors file. The caller closes the returned *os.File.
func Open(path string) (*File, *os.File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	f, err := Read(fh, st.Size(), path)
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	return f, fh, nil
}
