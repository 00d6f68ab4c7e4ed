// Package safetensors reads and writes Hugging Face safetensors files: a little-endian
// uint64 header length, a JSON header naming every tensor (dtype, shape, byte range),
// then the raw tensor bytes. Single files and sharded checkpoints
// (model.safetensors.index.json) are supported. Readers bound every allocation and
// report the file and tensor at fault; writers stream tensor bytes in declared order.
package safetensors

import (
	"fmt"
	"strings"
)

// DType is a safetensors element type name as it appears in the header.
type DType string

// The element types this package converts. Other dtypes are listed by the reader
// (their bytes can be copied) but have no float conversion.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
)

// elementSizes covers every dtype the safetensors format defines.
var elementSizes = map[DType]int64{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1,
	"BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}

// Size returns the bytes per element, or an error for an unknown dtype.
func (d DType) Size() (int64, error) {
	s, ok := elementSizes[d]
	if !ok {
		return 0, fmt.Errorf("unknown safetensors dtype %q", string(d))
	}
	return s, nil
}

// IsFloat reports whether the dtype converts to and from float32 here.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 }

// ParseDType accepts the header spelling and the common aliases used in configs
// ("float16", "bfloat16", "float32", lower case).
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "f32", "float32", "float":
		return F32, nil
	case "f16", "float16", "half":
		return F16, nil
	case "bf16", "bfloat16":
		return BF16, nil
	}
	return "", fmt.Errorf("unsupported float dtype %q (want f32, f16 or bf16)", s)
}

// TensorInfo describes one tensor. Shape is in safetensors (row-major) order: the
// last dimension is contiguous. Offset is absolute in the file.
type TensorInfo struct {
	Name   string
	DType  DType
	Shape  []int64
	Offset int64
	Size   int64
}

// Elements is the product of the shape (1 for a scalar).
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}
