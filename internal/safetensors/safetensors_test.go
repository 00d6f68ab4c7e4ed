package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHalfRoundTripAndTies(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := halfToFloat(h)
		if f != f {
			if FloatToHalf(f)&0x7c00 != 0x7c00 || FloatToHalf(f)&0x3ff == 0 {
				t.Fatalf("NaN %04x did not stay NaN", h)
			}
			continue
		}
		if got := FloatToHalf(f); got != h {
			t.Fatalf("half %04x -> %v -> %04x", h, f, got)
		}
	}
	// Midpoint between 1 and the next half (1+2^-10) rounds to even (1).
	mid := float32(1 + 1.0/2048)
	if got := FloatToHalf(mid); got != 0x3c00 {
		t.Fatalf("tie rounding: got %04x want 3c00", got)
	}
	// Just above the midpoint rounds up.
	if got := FloatToHalf(math.Nextafter32(mid, 2)); got != 0x3c01 {
		t.Fatalf("above tie: got %04x want 3c01", got)
	}
	if got := FloatToHalf(70000); got != 0x7c00 {
		t.Fatalf("overflow: got %04x", got)
	}
	if got := FloatToHalf(1e-9); got != 0 {
		t.Fatalf("underflow: got %04x", got)
	}
	if got := FloatToBF16(1.00390625); got != 0x3f80 { // 1 + 2^-8 is a tie: even is 1.0
		t.Fatalf("bf16 tie: got %04x", got)
	}
}

func writeFile(t *testing.T, path string, meta map[string]string, ts []TensorInfo, data [][]float32) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, meta, ts)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range ts {
		es, _ := tt.DType.Size()
		raw := make([]byte, int64(len(data[i]))*es)
		if err := Encode(tt.DType, data[i], raw); err != nil {
			t.Fatal(err)
		}
		// write in two pieces to exercise chunked writes
		h := len(raw) / 2
		if err := w.WriteTensor(tt.Name, raw[:h]); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteTensor(tt.Name, raw[h:]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSingleFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ts := []TensorInfo{
		{Name: "b", DType: F16, Shape: []int64{2, 3}},
		{Name: "a", DType: BF16, Shape: []int64{4}},
		{Name: "c", DType: F32, Shape: []int64{1, 2}},
	}
	data := [][]float32{{1, 2, 3, -4, 0.5, 6}, {1, -1, 2, 0.25}, {3.25, -7.5}}
	p := filepath.Join(dir, "x.safetensors")
	writeFile(t, p, map[string]string{"format": "pt"}, ts, data)
	st, _ := os.Stat(p)
	if n, _ := FileSize(map[string]string{"format": "pt"}, ts); n != st.Size() {
		t.Fatalf("FileSize %d, file %d", n, st.Size())
	}
	m, err := OpenModel(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.Tensors) != 3 || m.Tensors[0].Name != "b" || m.Tensors[1].Name != "a" {
		t.Fatalf("order not kept: %+v", m.Tensors)
	}
	for i, tt := range m.Tensors {
		raw := make([]byte, tt.Size)
		if _, err := tt.File.ReadAt(raw, tt.Offset); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, tt.Elements())
		if err := Decode(tt.DType, raw, got); err != nil {
			t.Fatal(err)
		}
		for j := range got {
			if got[j] != data[i][j] {
				t.Fatalf("%s[%d] = %v want %v", tt.Name, j, got[j], data[i][j])
			}
		}
	}
	if (m.Tensors[2].Offset-8)%8 != 0 && m.Tensors[0].Offset%8 != 0 {
		t.Fatalf("header not padded to 8 bytes")
	}
}

func TestShardedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	var ts []TensorInfo
	var data [][]float32
	for i := 0; i < 5; i++ {
		ts = append(ts, TensorInfo{Name: "model.layers." + string(rune('0'+i)) + ".w", DType: F32, Shape: []int64{4, 4}})
		v := make([]float32, 16)
		for j := range v {
			v[j] = float32(i*100 + j)
		}
		data = append(data, v)
	}
	shards, err := PlanShards(ts, 150) // 64 bytes per tensor: two per shard
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 3 {
		t.Fatalf("want 3 shards, got %d", len(shards))
	}
	k := 0
	for i, s := range shards {
		writeFile(t, filepath.Join(dir, ShardName(i, len(shards))), nil, s, data[k:k+len(s)])
		k += len(s)
	}
	idx, err := IndexJSON(shards)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexName), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 5 {
		t.Fatalf("got %d tensors", len(m.Tensors))
	}
	for i, tt := range m.Tensors {
		if tt.Name != ts[i].Name {
			t.Fatalf("tensor %d is %s want %s", i, tt.Name, ts[i].Name)
		}
		raw := make([]byte, tt.Size)
		tt.File.ReadAt(raw, tt.Offset)
		if v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4:])); v != data[i][1] {
			t.Fatalf("%s[1] = %v", tt.Name, v)
		}
	}
	m.Close()

	// An index entry pointing at the wrong shard is an error naming the tensor.
	bad := strings.Replace(string(idx), `"model.layers.0.w": "model-00001-of-00003.safetensors"`, `"model.layers.0.w": "model-00002-of-00003.safetensors"`, 1)
	os.WriteFile(filepath.Join(dir, IndexName), []byte(bad), 0o644)
	if _, err := OpenModel(dir); err == nil || !strings.Contains(err.Error(), "model.layers.0.w") {
		t.Fatalf("want error naming model.layers.0.w, got %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.safetensors")
	writeFile(t, p, nil, []TensorInfo{{Name: "w", DType: F16, Shape: []int64{8}}}, [][]float32{make([]float32, 8)})
	full, _ := os.ReadFile(p)

	check := func(name string, data []byte, want string) {
		t.Helper()
		q := filepath.Join(dir, name)
		os.WriteFile(q, data, 0o644)
		_, _, err := Open(q)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: want error containing %q, got %v", name, want, err)
		}
	}
	check("trunc.safetensors", full[:len(full)-3], `"w"`)
	check("short.safetensors", full[:5], "truncated")
	huge := append([]byte(nil), full...)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	check("huge.safetensors", huge, "exceeds limit")
	over := append([]byte(nil), full...)
	binary.LittleEndian.PutUint64(over, uint64(len(full)))
	check("over.safetensors", over, "truncated")
	badDT := bytes.Replace(full, []byte(`"F16"`), []byte(`"Q16"`), 1)
	check("dtype.safetensors", badDT, "Q16")

	var buf bytes.Buffer
	w, _ := NewWriter(&buf, nil, []TensorInfo{{Name: "a", DType: F32, Shape: []int64{2}}, {Name: "b", DType: F32, Shape: []int64{1}}})
	if err := w.WriteTensor("b", make([]byte, 4)); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("out-of-order write: %v", err)
	}
	w.WriteTensor("a", make([]byte, 8))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("incomplete close: %v", err)
	}
}
