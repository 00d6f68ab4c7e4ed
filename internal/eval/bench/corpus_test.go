package bench

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite testdata/fuzz/FuzzRead seeds (Parquet and gzip files made by the writer)")

// TestWriteFuzzCorpus regenerates the binary seeds of FuzzRead when run
// with -write-corpus; otherwise it checks the checked-in seeds still load.
func TestWriteFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	one := int64(1)
	seeds := map[string][]byte{}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[hubMMLU](&b, parquet.MaxRowsPerRowGroup(1))
	w.Write([]hubMMLU{{sp("2+2?"), sp("math"), []string{"3", "4"}, &one}, {sp("1+2?"), sp("math"), []string{"3", "4"}, new(int64)}})
	w.Close()
	seeds["mmlu_parquet"] = b.Bytes()
	var a bytes.Buffer
	wa := parquet.NewGenericWriter[hubARC](&a)
	wa.Write([]hubARC{{sp("x"), sp("Which?"), &hubARCChoices{[]string{"a", "b"}, []string{"A", "B"}}, sp("B")}})
	wa.Close()
	seeds["arc_parquet"] = a.Bytes()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(`{"question":"q?","answer":"#### 3"}` + "\n"))
	zw.Close()
	seeds["gsm8k_gz"] = z.Bytes()
	for name, data := range seeds {
		path := filepath.Join(dir, name)
		if *writeCorpus {
			os.MkdirAll(dir, 0o755)
			if err := os.WriteFile(path, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("seed %s missing: run go test -run TestWriteFuzzCorpus -write-corpus ./internal/eval/bench/", path)
		}
	}
}
