package gguf

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/evomerge/evomerge/internal/fuzzcheck"
)

// readBound is the GGUF reader's allocation bound. Every count is checked against the bytes left in the file
// before anything is allocated (a string byte needs 1 file byte, an array element its width, a tensor info 32),
// so the header costs a small multiple of the file: strings are read then copied (2x), a []string element is
// 16 bytes for 8 in the file, a boxed number 8 more, a TensorInfo ~100 bytes for at least 32, plus append's
// doubling and the index maps. The 64 KiB read buffer and test noise go in the constant.
var readBound = fuzzcheck.Bound{PerByte: 48, Fixed: 4 << 20}

func FuzzRead(f *testing.F) {
	good, _, _, _ := sampleForFuzz()
	f.Add(good)
	f.Add(good[:len(good)/2]) // truncated inside the header
	// Counts that claim far more than the file holds: 2^40 tensors, 2^40 KVs, a 2^40-byte key, a 2^40-element array.
	hdr := func(nT, nKV uint64, rest ...byte) []byte {
		b := []byte(Magic)
		b = binary.LittleEndian.AppendUint32(b, 3)
		b = binary.LittleEndian.AppendUint64(b, nT)
		b = binary.LittleEndian.AppendUint64(b, nKV)
		return append(b, rest...)
	}
	f.Add(hdr(1<<40, 0))
	f.Add(hdr(0, 1<<40))
	f.Add(hdr(0, 1, binary.LittleEndian.AppendUint64(nil, 1<<40)...))
	arr := binary.LittleEndian.AppendUint64(nil, 1)
	arr = append(arr, 'k')
	arr = binary.LittleEndian.AppendUint32(arr, valArray)
	arr = binary.LittleEndian.AppendUint32(arr, valString)
	arr = binary.LittleEndian.AppendUint64(arr, 1<<40)
	f.Add(hdr(0, 1, arr...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var g *File
		var err error
		fuzzcheck.Check(t, "gguf.Read", len(b), readBound, func() { g, err = Read(bytes.NewReader(b), int64(len(b))) })
		if err != nil {
			return
		}
		// What the reader accepted is self-consistent: every tensor's data lies inside the file.
		for _, ti := range g.Tensors {
			if ti.Offset < g.DataOffset || ti.Size < 0 || ti.Offset+ti.Size > int64(len(b)) {
				t.Fatalf("tensor %q: %d bytes at %d outside the %d-byte file", ti.Name, ti.Size, ti.Offset, len(b))
			}
		}
	})
}

func sampleForFuzz() ([]byte, []KV, []TensorInfo, [][]byte) {
	var tt testing.T
	return sample(&tt)
}
