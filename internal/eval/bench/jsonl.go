// Package bench loads benchmark items from local JSONL files, each in the
// schema its published dataset exports (ARC, HellaSwag, MMLU, TruthfulQA mc2,
// Winogrande, GSM8K) or in a generic schema for custom tasks, and applies the
// prompt formatting lm-evaluation-harness uses for that benchmark.
package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Bounds on what a loader will read, so a wrong or hostile file cannot
// exhaust memory.
const (
	MaxLineBytes = 4 << 20
	MaxItems     = 1_000_000
)

// readLines calls fn for every non-blank line of r with its 1-based line
// number. Errors from fn are prefixed with name:line.
func readLines(r io.Reader, name string, fn func(line []byte, n int) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	n, items := 0, 0
	for {
		line, err := readLine(br)
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		n++
		if errors.Is(err, errLineTooLong) {
			return fmt.Errorf("%s:%d: line longer than %d bytes", name, n, MaxLineBytes)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			items++
			if items > MaxItems {
				return fmt.Errorf("%s:%d: more than %d items", name, n, MaxItems)
			}
			if ferr := fn(line, n); ferr != nil {
				return fmt.Errorf("%s:%d: %w", name, n, ferr)
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns one line without its newline, refusing lines over
// MaxLineBytes instead of growing without bound.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineBytes+1 {
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

// readFile opens path and runs readLines over it.
func readFile(path string, fn func(line []byte, n int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return readLines(f, path, fn)
}
