package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/fuzzcheck"
)

// headerBound is Read's allocation bound. The header length is checked against the file size before the
// header is allocated, then encoding/json decodes it: the raw message map and each entry's decode copy the
// header a few times over, and every tensor costs a TensorInfo, its shape and its name. Nothing is sized by
// a count inside the header.
var headerBound = fuzzcheck.Bound{PerByte: 64, Fixed: 4 << 20}

// indexBound is OpenModel's bound for an index of n bytes over two small fixed shards: the index is read
// through a limit (64 MiB) and decoded by encoding/json; shard headers are a constant here.
var indexBound = fuzzcheck.Bound{PerByte: 64, Fixed: 4 << 20}

func fuzzFile(t testing.TB, meta map[string]string, ts []TensorInfo) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, meta, ts)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range ts {
		es, _ := ti.DType.Size()
		if err := w.WriteTensor(ti.Name, make([]byte, ti.Elements()*es)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rawHeader(h string, data int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(b, h...), make([]byte, data)...)
}

func FuzzReadHeader(f *testing.F) {
	f.Add(fuzzFile(f, map[string]string{"format": "pt"}, []TensorInfo{
		{Name: "a", DType: F16, Shape: []int64{2, 3}}, {Name: "b", DType: BF16, Shape: []int64{4}}, {Name: "c", DType: F32}}))
	f.Add(rawHeader(`{"x":{"dtype":"F64","shape":[2305843009213693951],"data_offsets":[0,0]}}`, 0))
	f.Add(rawHeader(`{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"y":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, 4))
	f.Add(rawHeader(`{"__metadata__":{"a":1}}`, 0))
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62)) // header length far beyond the file
	f.Fuzz(func(t *testing.T, b []byte) {
		var got *File
		var err error
		fuzzcheck.Check(t, "safetensors.Read", len(b), headerBound, func() { got, err = Read(bytes.NewReader(b), int64(len(b)), "fuzz.safetensors") })
		if err != nil {
			return
		}
		// What Read accepts can be read: every tensor lies in the data section, has the bytes its shape
		// needs, and no two overlap.
		end := got.DataBase
		for _, ti := range got.Tensors {
			es, err := ti.DType.Size()
			if err != nil {
				t.Fatalf("tensor %q: accepted unknown dtype %q", ti.Name, ti.DType)
			}
			if ti.Offset < end || ti.Offset+ti.Size > int64(len(b)) || ti.Size != ti.Elements()*es {
				t.Fatalf("tensor %q: %d bytes at %d (shape %v %s) in a %d-byte file, previous ends at %d",
					ti.Name, ti.Size, ti.Offset, ti.Shape, ti.DType, len(b), end)
			}
			end = ti.Offset + ti.Size
		}
	})
}

func FuzzOpenIndex(f *testing.F) {
	dir := f.TempDir()
	shards := [][]TensorInfo{
		{{Name: "w.0", DType: F32, Shape: []int64{2, 2}}, {Name: "w.1", DType: F16, Shape: []int64{3}}},
		{{Name: "w.2", DType: BF16, Shape: []int64{2}}},
	}
	for i, s := range shards {
		if err := os.WriteFile(filepath.Join(dir, ShardName(i, len(shards))), fuzzFile(f, nil, s), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	good, err := IndexJSON(shards)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"weight_map":{"w.0":"../model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"w.0":"model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"w.0":"model-00002-of-00002.safetensors","w.1":"model-00001-of-00002.safetensors","w.2":"model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{}}`))
	f.Add([]byte(`[1,2,3]`))
	idx := filepath.Join(dir, IndexName)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(idx, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var m *Model
		var err error
		fuzzcheck.Check(t, "safetensors.OpenModel", len(b), indexBound, func() { m, err = OpenModel(dir) })
		if err != nil {
			return
		}
		defer m.Close()
		// An accepted index names every tensor of the shards it uses, exactly once.
		seen := map[string]bool{}
		for _, ti := range m.Tensors {
			if seen[ti.Name] {
				t.Fatalf("tensor %q listed twice", ti.Name)
			}
			seen[ti.Name] = true
			if filepath.Dir(ti.Source) != dir {
				t.Fatalf("tensor %q read from %s, outside the model folder", ti.Name, ti.Source)
			}
		}
	})
}
