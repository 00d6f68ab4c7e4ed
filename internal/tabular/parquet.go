package tabular

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// rowBatch is how many rows are decoded at once: memory is one batch of
// rows plus the pages the reader holds, whatever the file's size.
const rowBatch = 64

func eachParquet(r io.ReaderAt, size int64, name string, o Options, fn func(Record) error) (err error) {
	// The library panics on some malformed inputs; a user's file must get
	// an error, never bring the worker down.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: malformed Parquet file: %v", name, p)
		}
	}()
	if err := checkFooter(r, size); err != nil {
		return fmt.Errorf("%s: malformed Parquet file: %w", name, err)
	}
	f, err := parquet.OpenFile(r, size,
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(64<<10))
	if err != nil {
		return fmt.Errorf("%s: malformed Parquet file: %w", name, err)
	}
	if err := checkChunks(f, size); err != nil {
		return fmt.Errorf("%s: malformed Parquet file: %w", name, err)
	}
	schema := f.Schema()
	if err := checkColumns(schema, o.Columns); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	row := 0
	buf := make([]parquet.Row, rowBatch)
	for gi, rg := range f.RowGroups() {
		rows := rg.Rows()
		for {
			n, rerr := rows.ReadRows(buf)
			for _, pr := range buf[:n] {
				row++
				loc := fmt.Sprintf("%s: row %d", name, row)
				var v any
				if err := schema.Reconstruct(&v, pr); err != nil {
					rows.Close()
					return fmt.Errorf("%s: %w", loc, err)
				}
				js, err := json.Marshal(plain(v))
				if err != nil {
					rows.Close()
					return fmt.Errorf("%s: %w", loc, err)
				}
				if len(js) > MaxRecordBytes {
					rows.Close()
					return fmt.Errorf("%s: row longer than %d bytes", loc, MaxRecordBytes)
				}
				if ferr := fn(Record{JSON: js, Loc: loc, N: row}); ferr != nil {
					rows.Close()
					return fmt.Errorf("%s: %w", loc, ferr)
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				rows.Close()
				return fmt.Errorf("%s: row group %d: %w", name, gi, rerr)
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("%s: row group %d: %w", name, gi, err)
		}
	}
	return nil
}

// MaxFooterBytes bounds a Parquet file's metadata (the Hub's largest
// files have footers of a few hundred KiB).
const MaxFooterBytes = 64 << 20

// checkFooter validates the footer length before the library allocates a
// buffer of that size: a corrupt length must not cost gigabytes.
func checkFooter(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("%d bytes is too short", size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("reading footer: %w", err)
	}
	if string(tail[4:]) == "PARE" {
		return fmt.Errorf("encrypted Parquet files are not supported")
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Errorf("no PAR1 magic at the end (truncated?)")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n+12 > size || n > MaxFooterBytes {
		return fmt.Errorf("footer length %d does not fit a file of %d bytes", n, size)
	}
	return nil
}

// checkChunks checks that every column chunk lies inside the file, so the
// reader never sizes a buffer from a chunk that cannot exist.
func checkChunks(f *parquet.File, size int64) error {
	for gi, rg := range f.Metadata().RowGroups {
		for ci, c := range rg.Columns {
			m := c.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			if start < 4 || m.TotalCompressedSize < 0 || start+m.TotalCompressedSize > size {
				return fmt.Errorf("row group %d column %d: chunk at %d+%d outside the file (%d bytes)", gi, ci, start, m.TotalCompressedSize, size)
			}
		}
	}
	return nil
}

// plain turns what the Parquet reader builds into JSON-friendly values:
// byte arrays without a STRING annotation become text when they are UTF-8.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
		return x
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return x
	default:
		return v
	}
}

// checkColumns reports the first needed column the schema lacks.
func checkColumns(schema *parquet.Schema, need []string) error {
	for _, want := range need {
		alts := strings.Split(want, "|")
		found := false
		for _, a := range alts {
			if hasPath(schema, strings.Split(a, ".")) {
				found = true
				break
			}
		}
		if !found {
			quoted := make([]string, len(alts))
			for i, a := range alts {
				quoted[i] = fmt.Sprintf("%q", a)
			}
			what := "column " + strings.Join(quoted, " or ")
			return fmt.Errorf("no %s (the file has %s)", what, strings.Join(columnNames(schema), ", "))
		}
	}
	return nil
}

func hasPath(n parquet.Node, path []string) bool {
	for _, p := range path {
		if n.Leaf() {
			return false
		}
		var next parquet.Node
		for _, f := range n.Fields() {
			if f.Name() == p {
				next = f
				break
			}
		}
		if next == nil {
			return false
		}
		n = next
	}
	return true
}

// columnNames lists the top-level columns, nested groups as name{a,b}.
func columnNames(schema *parquet.Schema) []string {
	var out []string
	for _, f := range schema.Fields() {
		name := f.Name()
		if !f.Leaf() && f.Type().LogicalType() == nil {
			var sub []string
			for _, c := range f.Fields() {
				sub = append(sub, c.Name())
			}
			sort.Strings(sub)
			name += "{" + strings.Join(sub, ",") + "}"
		}
		out = append(out, name)
	}
	return out
}
