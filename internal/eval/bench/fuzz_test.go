package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/eval/task"
)

// FuzzRead feeds arbitrary bytes (JSONL, gzip, Parquet or garbage) to every
// loader through the entry point the evaluator uses: no input may panic or
// yield an item that fails validation. The checked-in corpus under
// testdata/fuzz/FuzzRead holds a Hub-layout Parquet file, a gzipped JSONL
// file and JSONL lines of each benchmark.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"arc.jsonl", "hellaswag.jsonl", "mmlu.jsonl", "gsm8k.jsonl", "winogrande.jsonl", "truthfulqa_mc2.jsonl", "generic_mc.jsonl"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for _, name := range Formats() {
			fm, _ := Lookup(name)
			items, err := fm.Read(r, int64(len(data)), "fuzz")
			if err == nil {
				for _, it := range items {
					if cerr := it.Check(fm.Kind); cerr != nil {
						t.Fatalf("%s: item %s accepted but invalid: %v", name, it.ID, cerr)
					}
				}
			}
		}
		for _, k := range task.Kinds {
			_, _ = ReadGeneric(r, int64(len(data)), "fuzz", k)
		}
	})
}
