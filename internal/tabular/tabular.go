// Package tabular streams the records of a data file — JSON Lines, gzipped
// JSON Lines or Parquet (the Hugging Face Hub's format) — as one JSON object
// per record, so every loader parses one shape whatever the file format.
// The format is found from the file's first bytes, not its name: files
// fetched from the content-addressed store have no extension.
//
// Memory stays bounded: JSONL is read a line at a time (lines over
// MaxRecordBytes are refused), Parquet a row group at a time in batches of
// rows, and only the columns a loader needs are checked up front.
package tabular

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/evomerge/evomerge/internal/jsonpos"
)

// MaxRecordBytes bounds one record (a JSONL line, or a Parquet row as JSON).
const MaxRecordBytes = 4 << 20

// Format of a data file.
type Format string

const (
	JSONL     Format = "jsonl"
	GzipJSONL Format = "jsonl.gz"
	Parquet   Format = "parquet"
)

// Sniff tells the format from the first bytes of a file.
func Sniff(head []byte) Format {
	switch {
	case bytes.HasPrefix(head, []byte("PAR1")):
		return Parquet
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return GzipJSONL
	default:
		return JSONL
	}
}

// Record is one row of a data file as a JSON object.
type Record struct {
	JSON []byte
	// Loc names the record in errors: "file:LINE" for JSONL,
	// "file: row N" (1-based, across row groups) for Parquet.
	Loc string
	// N is the 1-based line (JSONL) or row (Parquet) number.
	N int
}

// Options say what a loader needs of a file.
type Options struct {
	// Columns a Parquet file must have, as dotted paths into nested groups
	// ("choices.text"); "a|b" accepts either. Checked against the schema
	// before any row is read so a wrong file fails at once, naming the
	// missing column and the columns the file has.
	Columns []string
}

// EachFile calls fn for every record of the file at path. An error from fn
// is returned prefixed with the record's Loc.
func EachFile(path string, o Options, fn func(Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return Each(f, st.Size(), path, o, fn)
}

// Each is EachFile over any random-access reader of the given size; name
// is used in errors.
func Each(r io.ReaderAt, size int64, name string, o Options, fn func(Record) error) error {
	head := make([]byte, 4)
	n, _ := r.ReadAt(head, 0)
	switch Sniff(head[:n]) {
	case Parquet:
		return eachParquet(r, size, name, o, fn)
	case GzipJSONL:
		zr, err := gzip.NewReader(io.NewSectionReader(r, 0, size))
		if err != nil {
			return fmt.Errorf("%s: gzip: %w", name, err)
		}
		defer zr.Close()
		return eachLine(zr, name, fn)
	default:
		return eachLine(io.NewSectionReader(r, 0, size), name, fn)
	}
}

// eachLine calls fn for every non-blank line with its 1-based number.
func eachLine(r io.Reader, name string, fn func(Record) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		line, err := readLine(br)
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		n++
		loc := fmt.Sprintf("%s:%d", name, n)
		if errors.Is(err, errLineTooLong) {
			return fmt.Errorf("%s: line longer than %d bytes", loc, MaxRecordBytes)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", loc, err)
		}
		raw := line
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			if ferr := fn(Record{JSON: line, Loc: loc, N: n}); ferr != nil {
				// A line that is not JSON: name the column of the bad character too.
				if _, col, serr := jsonpos.SyntaxError(raw); serr != nil {
					return fmt.Errorf("%s:%d: %w", loc, col, ferr)
				}
				return fmt.Errorf("%s: %w", loc, ferr)
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns one line without its newline, refusing lines over
// MaxRecordBytes instead of growing without bound.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxRecordBytes+1 {
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, err
		}
	}
}
