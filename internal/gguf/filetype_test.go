package gguf

import "testing"

func TestFileTypeNamesTheMostCommonWeightType(t *testing.T) {
	for _, c := range []struct {
		types []Type
		want  uint32
		ok    bool
	}{
		{[]Type{TypeF16, TypeF16, TypeF32}, 1, true},
		{[]Type{TypeQ8_0, TypeF32, TypeQ8_0}, 7, true},
		{[]Type{TypeBF16}, 32, true},
		{[]Type{TypeF32, TypeF16}, 0, true}, // a tie goes to the lower type
		{nil, 0, true},                      // no 2-D weights: F32, as llama.cpp's default
	} {
		got, ok := FileType(c.types)
		if got != c.want || ok != c.ok {
			t.Errorf("FileType(%v) = %d, %v; want %d, %v", c.types, got, ok, c.want, c.ok)
		}
	}
}
