package tabular

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func collect(t *testing.T, data []byte, o Options) ([]Record, error) {
	t.Helper()
	var recs []Record
	err := Each(bytes.NewReader(data), int64(len(data)), "f", o, func(r Record) error {
		r.JSON = bytes.Clone(r.JSON)
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

func TestFormatsGiveTheSameRecords(t *testing.T) {
	type row struct {
		A string   `parquet:"a"`
		B []string `parquet:"b,list"`
		C *int64   `parquet:"c,optional"`
	}
	var pq bytes.Buffer
	w := parquet.NewGenericWriter[row](&pq, parquet.MaxRowsPerRowGroup(1))
	three := int64(3)
	w.Write([]row{{"x", []string{"p", "q"}, &three}, {"y", nil, nil}})
	w.Close()
	jl := []byte("{\"a\":\"x\",\"b\":[\"p\",\"q\"],\"c\":3}\n\n{\"a\":\"y\",\"b\":[],\"c\":null}\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(jl)
	zw.Close()

	p, err := collect(t, pq.Bytes(), Options{Columns: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := collect(t, jl, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := collect(t, gz.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || string(p[0].JSON) != string(j[0].JSON) || string(p[1].JSON) != string(j[1].JSON) || string(g[1].JSON) != string(j[1].JSON) {
		t.Fatalf("parquet %s / %s\njsonl %s / %s", p[0].JSON, p[1].JSON, j[0].JSON, j[1].JSON)
	}
	if p[1].Loc != "f: row 2" || j[1].Loc != "f:3" || g[1].N != 3 {
		t.Fatalf("locations %q %q %d", p[1].Loc, j[1].Loc, g[1].N)
	}
	if _, err := collect(t, pq.Bytes(), Options{Columns: []string{"a", "d|e"}}); err == nil ||
		err.Error() != `f: no column "d" or "e" (the file has a, b, c)` {
		t.Fatalf("missing column: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	cases := map[string][]byte{
		"no PAR1 magic at the end": []byte("PAR1 truncated"),
		"does not fit a file":      append([]byte("PAR1xxxxxxxx"), 0xff, 0xff, 0, 0, 'P', 'A', 'R', '1'),
		"encrypted Parquet files":  []byte("PAR1xxxxxxxxxxxxPARE"),
		"gzip":                     {0x1f, 0x8b, 1, 2},
		"line longer than":         []byte(strings.Repeat("x", MaxRecordBytes+2)),
	}
	for want, data := range cases {
		if _, err := collect(t, data, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v", want, err)
		}
	}
	if err := EachFile(filepath.Join(t.TempDir(), "nope.parquet"), Options{}, func(Record) error { return nil }); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

// A JSONL line that is not JSON is named by its line and the column of the bad character, whatever the
// loader's own message; a line that is JSON of the wrong shape by its line.
func TestBadLineNamesColumn(t *testing.T) {
	data := []byte("{\"a\": 1}\n\n  {\"a\": 1,, \"b\": 2}\n")
	err := Each(bytes.NewReader(data), int64(len(data)), "f.jsonl", Options{}, func(r Record) error {
		var v map[string]int
		if err := json.Unmarshal(r.JSON, &v); err != nil {
			return fmt.Errorf("not a JSON object: %v", err)
		}
		return nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "f.jsonl:3:11: not a JSON object") {
		t.Fatalf("err = %v", err)
	}
	data = []byte("{\"a\": 1}\n{\"a\": \"x\"}\n")
	err = Each(bytes.NewReader(data), int64(len(data)), "f.jsonl", Options{}, func(r Record) error {
		var v map[string]int
		return json.Unmarshal(r.JSON, &v)
	})
	if err == nil || !strings.HasPrefix(err.Error(), "f.jsonl:2: ") {
		t.Fatalf("err = %v", err)
	}
}
