package gguf

// FileType is llama.cpp's general.file_type for a model whose 2-D weights have
// the given types: the most common type (the lowest on a tie) names the file.
// ok is false for a type llama.cpp has no file type for.
func FileType(weightTypes []Type) (ft uint32, ok bool) {
	count := map[Type]int{}
	for _, t := range weightTypes {
		count[t]++
	}
	best, n := Type(0), -1
	for t, c := range count {
		if c > n || c == n && t < best {
			best, n = t, c
		}
	}
	ft, ok = map[Type]uint32{TypeF32: 0, TypeF16: 1, TypeQ4_0: 2, TypeQ4_1: 3,
		TypeQ8_0: 7, TypeQ5_0: 8, TypeQ5_1: 9, TypeQ2_K: 10, TypeQ3_K: 12,
		TypeQ4_K: 15, TypeQ5_K: 17, TypeQ6_K: 18, TypeBF16: 32}[best]
	return ft, ok
}
