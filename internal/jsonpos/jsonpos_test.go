package jsonpos

import (
	"encoding/json"
	"testing"
)

func TestLocate(t *testing.T) {
	for _, c := range []struct {
		doc       string
		line, col int
	}{
		{`{"a": x}`, 1, 7},
		{"{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}", 3, 14},
		{"{\"é\": 1 \"b\"}", 1, 9},
		{"{\"a\": 1,\n}", 2, 1},
		{`{"a": `, 1, 6},
	} {
		line, col, err := SyntaxError([]byte(c.doc))
		if err == nil || line != c.line || col != c.col {
			t.Errorf("%q: got %d:%d (%v), want %d:%d", c.doc, line, col, err, c.line, c.col)
		}
	}
	if _, _, err := SyntaxError([]byte(`{"a": [1]}`)); err != nil {
		t.Fatal(err)
	}
	var v struct{ N int }
	doc := []byte("{\n  \"N\": \"two\"\n}")
	err := json.Unmarshal(doc, &v)
	line, col, ok := Locate(doc, err)
	if !ok || line != 2 || col != 12 {
		t.Fatalf("type error at %d:%d (%v), want 2:12", line, col, err)
	}
}
