package gguf

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	ollamaggml "github.com/ollama/ollama/fs/ggml"
)

func sample(t *testing.T) ([]byte, []KV, []TensorInfo, [][]byte) {
	t.Helper()
	kvs := []KV{
		{"general.architecture", "llama"},
		{"llama.block_count", uint32(2)},
		{"llama.rope.freq_base", float32(10000)},
		{"tokenizer.ggml.tokens", []string{"<unk>", "a", "bb"}},
		{"tokenizer.ggml.scores", []float32{0, -1, -2}},
		{"tokenizer.ggml.token_type", []int32{2, 1, 1}},
		{"x.flag", true},
		{"x.big", uint64(1) << 40},
		{"x.neg", int64(-5)},
		{"x.f64", 2.5},
	}
	tensors := []TensorInfo{
		{Name: "a", Shape: []int64{3, 2}, Type: TypeF32},
		{Name: "b", Shape: []int64{5}, Type: TypeF16},
		{Name: "q", Shape: []int64{32, 2}, Type: TypeQ8_0},
	}
	data := [][]byte{make([]byte, 24), make([]byte, 10), make([]byte, 68)}
	for i := range data {
		for j := range data[i] {
			data[i][j] = byte(i*31 + j)
		}
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, kvs, tensors)
	if err != nil {
		t.Fatal(err)
	}
	for i, ti := range tensors {
		if err := w.WriteTensor(ti.Name, data[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), kvs, tensors, data
}

func TestRoundTrip(t *testing.T) {
	b, kvs, tensors, data := sample(t)
	f, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.KVs, kvs) {
		t.Fatalf("metadata differs:\n got %#v\nwant %#v", f.KVs, kvs)
	}
	if len(f.Tensors) != len(tensors) {
		t.Fatalf("got %d tensors", len(f.Tensors))
	}
	for i, ti := range f.Tensors {
		if ti.Name != tensors[i].Name || !reflect.DeepEqual(ti.Shape, tensors[i].Shape) || ti.Type != tensors[i].Type {
			t.Fatalf("tensor %d: got %+v want %+v", i, ti, tensors[i])
		}
		got, err := f.ReadTensor(bytes.NewReader(b), ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[i]) {
			t.Fatalf("tensor %q data differs", ti.Name)
		}
	}
	if s, _ := f.String("general.architecture"); s != "llama" {
		t.Fatalf("architecture %q", s)
	}
	if n, _ := f.Uint("llama.block_count"); n != 2 {
		t.Fatalf("block_count %d", n)
	}
	// Same input, same bytes.
	b2, _, _, _ := sample(t)
	if !bytes.Equal(b, b2) {
		t.Fatal("writer is not deterministic")
	}
}

// Ollama's own decoder reads what we write: the file is valid GGUF for the tools users take models to.
func TestOllamaReadsOurFiles(t *testing.T) {
	b, _, tensors, _ := sample(t)
	g, err := ollamaggml.Decode(bytes.NewReader(b), -1)
	if err != nil {
		t.Fatal(err)
	}
	if g.KV().Architecture() != "llama" || g.KV().BlockCount() != 2 {
		t.Fatalf("ollama read arch=%q blocks=%d", g.KV().Architecture(), g.KV().BlockCount())
	}
	items := g.Tensors().Items()
	if len(items) != len(tensors) {
		t.Fatalf("ollama saw %d tensors", len(items))
	}
}

func TestBadInput(t *testing.T) {
	good, _, _, _ := sample(t)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":     {nil, "bad magic"},
		"magic":     {[]byte("GGML...."), "bad magic"},
		"truncated": {good[:len(good)-40], "truncated"},
		"header":    {good[:40], "does not fit"},
	}
	// A tensor count far larger than the file can hold.
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(huge[8:], 1<<60)
	cases["tensor count"] = struct {
		data []byte
		want string
	}{huge, "does not fit"}
	// A string length far larger than the file.
	longStr := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(longStr[24:], 1<<62)
	cases["string length"] = struct {
		data []byte
		want string
	}{longStr, "does not fit"}
	for name, c := range cases {
		_, err := Read(bytes.NewReader(c.data), int64(len(c.data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", name, err, c.want)
		}
	}
}

func TestWriterChecks(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, []KV{{"general.architecture", "llama"}}, []TensorInfo{{Name: "a", Shape: []int64{2}, Type: TypeF32}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("a", make([]byte, 4)); err == nil {
		t.Fatal("short tensor data accepted")
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("close with missing data: %v", err)
	}
	if _, err := NewWriter(&buf, nil, []TensorInfo{{Name: "q", Shape: []int64{31}, Type: TypeQ8_0}}); err == nil {
		t.Fatal("partial Q8_0 block accepted")
	}
}
