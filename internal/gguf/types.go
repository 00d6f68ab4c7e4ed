// Package gguf reads and writes GGUF model files (the container llama.cpp, ggml and Ollama use).
//
// The reader bounds every allocation by the size of the file, so a corrupt or hostile header produces an
// error instead of a huge allocation or a panic. The writer is sequential over any io.Writer, so a caller can
// hash the bytes while they are written.
package gguf

import "fmt"

// Type is a ggml tensor type id, as stored in GGUF tensor infos.
type Type uint32

// The tensor types this project knows the block layout of (ids from ggml.h).
const (
	TypeF32    Type = 0
	TypeF16    Type = 1
	TypeQ4_0   Type = 2
	TypeQ4_1   Type = 3
	TypeQ5_0   Type = 6
	TypeQ5_1   Type = 7
	TypeQ8_0   Type = 8
	TypeQ8_1   Type = 9
	TypeQ2_K   Type = 10
	TypeQ3_K   Type = 11
	TypeQ4_K   Type = 12
	TypeQ5_K   Type = 13
	TypeQ6_K   Type = 14
	TypeQ8_K   Type = 15
	TypeIQ4_NL Type = 20
	TypeIQ4_XS Type = 23
	TypeI8     Type = 24
	TypeI16    Type = 25
	TypeI32    Type = 26
	TypeI64    Type = 27
	TypeF64    Type = 28
	TypeBF16   Type = 30
)

type typeLayout struct {
	name      string
	blockSize int64 // elements per block
	blockLen  int64 // bytes per block
}

var layouts = map[Type]typeLayout{
	TypeF32:    {"F32", 1, 4},
	TypeF16:    {"F16", 1, 2},
	TypeQ4_0:   {"Q4_0", 32, 18},
	TypeQ4_1:   {"Q4_1", 32, 20},
	TypeQ5_0:   {"Q5_0", 32, 22},
	TypeQ5_1:   {"Q5_1", 32, 24},
	TypeQ8_0:   {"Q8_0", 32, 34},
	TypeQ8_1:   {"Q8_1", 32, 36},
	TypeQ2_K:   {"Q2_K", 256, 84},
	TypeQ3_K:   {"Q3_K", 256, 110},
	TypeQ4_K:   {"Q4_K", 256, 144},
	TypeQ5_K:   {"Q5_K", 256, 176},
	TypeQ6_K:   {"Q6_K", 256, 210},
	TypeQ8_K:   {"Q8_K", 256, 292},
	TypeIQ4_NL: {"IQ4_NL", 32, 18},
	TypeIQ4_XS: {"IQ4_XS", 256, 136},
	TypeI8:     {"I8", 1, 1},
	TypeI16:    {"I16", 1, 2},
	TypeI32:    {"I32", 1, 4},
	TypeI64:    {"I64", 1, 8},
	TypeF64:    {"F64", 1, 8},
	TypeBF16:   {"BF16", 1, 2},
}

// Known reports whether the block layout of t is known.
func (t Type) Known() bool { _, ok := layouts[t]; return ok }

func (t Type) String() string {
	if l, ok := layouts[t]; ok {
		return l.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// ParseType maps a name such as "F16" or "q8_0" to its Type.
func ParseType(name string) (Type, error) {
	for t, l := range layouts {
		if equalFold(l.name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown tensor type %q", name)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// BlockSize is the number of elements one block of t holds (1 for plain types, 0 if t is unknown).
func (t Type) BlockSize() int64 { return layouts[t].blockSize }

// IsFloat reports whether t is a plain floating-point type (F32, F16, BF16, F64).
func (t Type) IsFloat() bool {
	return t == TypeF32 || t == TypeF16 || t == TypeBF16 || t == TypeF64
}

// BytesFor returns the storage size of n elements of type t. n must be a whole number of blocks.
func (t Type) BytesFor(n int64) (int64, error) {
	l, ok := layouts[t]
	if !ok {
		return 0, fmt.Errorf("gguf: unsupported tensor type %s", t)
	}
	if n < 0 || n%l.blockSize != 0 {
		return 0, fmt.Errorf("gguf: %d elements is not a whole number of %s blocks of %d", n, t, l.blockSize)
	}
	blocks := n / l.blockSize
	if blocks > (1<<62)/l.blockLen {
		return 0, fmt.Errorf("gguf: %d elements of %s overflow", n, t)
	}
	return blocks * l.blockLen, nil
}
