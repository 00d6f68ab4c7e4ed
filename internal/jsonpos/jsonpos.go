// Package jsonpos turns the byte offsets encoding/json reports (json.SyntaxError,
// json.UnmarshalTypeError) into the line and column a user finds in an editor.
package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// LineCol is the 1-based line and column (in characters) of the byte at offset
// in data; offsets past the end are clamped to it.
func LineCol(data []byte, offset int64) (line, col int) {
	if offset < 0 {
		offset = 0
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte{'\n'})
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[start:])
}

// Locate finds the position err (from decoding all of data) is about: for a
// syntax error the offending character, for a type error the end of the value
// of the wrong type. ok is false for other errors.
func Locate(data []byte, err error) (line, col int, ok bool) {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset counts the offending byte as read.
		line, col = LineCol(data, max(se.Offset-1, 0))
		return line, col, true
	case errors.As(err, &te):
		line, col = LineCol(data, max(te.Offset-1, 0))
		return line, col, true
	}
	return 0, 0, false
}

// SyntaxError checks that data is one JSON value and, when it is not, returns
// the error with its line and column.
func SyntaxError(data []byte) (line, col int, err error) {
	var v any
	err = json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return 0, 0, nil
	}
	line, col, _ = Locate(data, err)
	return line, col, err
}
