package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/eval/task"
	"github.com/evomerge/evomerge/internal/fuzzcheck"
)

// loadBound is the JSONL loaders' allocation bound: a line is read into a buffer that never exceeds
// MaxLineBytes, then encoding/json decodes it into one item (strings copied once or twice, prompt
// formatting adds a few copies), so items cost a small multiple of their line. The 64 KiB read buffer and
// test noise are the constant.
var loadBound = fuzzcheck.Bound{PerByte: 64, Fixed: 4 << 20}

func benchSeeds(f *testing.F) [][]byte {
	files, err := filepath.Glob("testdata/*.jsonl")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	var out [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte("\n\n  \n"), []byte(`{"question": "\u0000", "choices": {"text": [], "label": []}, "answerKey": ""}`),
		[]byte(`{"answer": 1e400}`), []byte(strings.Repeat("[", 10000)))
}

// FuzzLoadNative feeds every native benchmark schema (the byte picks one).
func FuzzLoadNative(f *testing.F) {
	names := Formats()
	for i, b := range benchSeeds(f) {
		for j := range names {
			if i%len(names) == j || j == 0 {
				f.Add(uint8(j), b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		format, err := Lookup(names[int(which)%len(names)])
		if err != nil {
			t.Fatal(err)
		}
		var items []task.Item
		fuzzcheck.Check(t, "bench "+format.Name, len(b), loadBound, func() { items, err = format.Read(bytes.NewReader(b), int64(len(b)), "fuzz.jsonl") })
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.jsonl") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(items) == 0 {
			t.Fatal("no items and no error")
		}
		if err := task.ValidateAll(format.Kind, items); err != nil {
			t.Fatalf("accepted items do not validate: %v", err)
		}
	})
}

// FuzzLoadGeneric feeds the generic schema under every task kind (the byte picks one).
func FuzzLoadGeneric(f *testing.F) {
	for i, b := range benchSeeds(f) {
		f.Add(uint8(i), b)
	}
	path := filepath.Join(f.TempDir(), "fuzz.jsonl")
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		kind := task.Kinds[int(which)%len(task.Kinds)]
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var items []task.Item
		var err error
		fuzzcheck.Check(t, "bench generic", len(b), loadBound, func() { items, err = LoadGeneric(path, kind) })
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := task.ValidateAll(kind, items); err != nil {
			t.Fatalf("accepted items do not validate: %v", err)
		}
	})
}
