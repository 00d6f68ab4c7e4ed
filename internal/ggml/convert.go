package ggml

/*
#include "ggml.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// ToFloat32 widens or dequantizes len(dst) elements of type t from src, using ggml's own kernels.
func ToFloat32(t Type, src []byte, dst []float32) error {
	if len(dst) == 0 {
		return nil
	}
	if t == F32 {
		if len(src) != 4*len(dst) {
			return fmt.Errorf("ggml: %d bytes of f32 for %d values", len(src), len(dst))
		}
		copy(dst, unsafe.Slice((*float32)(unsafe.Pointer(&src[0])), len(dst)))
		return nil
	}
	name := TypeName(t)
	tr := C.ggml_get_type_traits(C.int(t))
	if name == "" || tr.to_float == nil {
		return fmt.Errorf("ggml: cannot convert type %d to f32", t)
	}
	n := int64(len(dst))
	if n%int64(tr.blck_size) != 0 {
		return fmt.Errorf("ggml: %d values is not a whole number of %s blocks", n, name)
	}
	if want := RowSize(t, n); int64(len(src)) != want {
		return fmt.Errorf("ggml: %d bytes of %s for %d values (want %d)", len(src), name, n, want)
	}
	C.ggml_convert_to_float(tr.to_float, unsafe.Pointer(&src[0]), (*C.float)(&dst[0]), C.int64_t(n))
	return nil
}

// FromFloat32 narrows or quantizes src into dst as type t (F32, F16, BF16, or a quantized type whose block
// divides rowLen; rowLen is the length of one row, the unit ggml quantizes).
func FromFloat32(t Type, src []float32, dst []byte, rowLen int64) error {
	n := int64(len(src))
	if n == 0 {
		return nil
	}
	name := TypeName(t)
	if name == "" {
		return fmt.Errorf("ggml: unknown type %d", t)
	}
	if want := RowSize(t, n); int64(len(dst)) != want {
		return fmt.Errorf("ggml: %d bytes for %d values of %s (want %d)", len(dst), n, name, want)
	}
	switch t {
	case F32:
		copy(unsafe.Slice((*float32)(unsafe.Pointer(&dst[0])), n), src)
	case F16:
		C.ggml_fp32_to_fp16_row((*C.float)(&src[0]), (*C.uint16_t)(unsafe.Pointer(&dst[0])), C.int64_t(n))
	case BF16:
		C.ggml_fp32_to_bf16_row((*C.float)(&src[0]), (*C.uint16_t)(unsafe.Pointer(&dst[0])), C.int64_t(n))
	default:
		bs := int64(C.ggml_blck_size(C.int(t)))
		if rowLen <= 0 || rowLen%bs != 0 || n%rowLen != 0 {
			return fmt.Errorf("ggml: rows of %d cannot be quantized to %s (block %d)", rowLen, name, bs)
		}
		C.ggml_quantize_chunk(C.int(t), (*C.float)(&src[0]), unsafe.Pointer(&dst[0]), 0, C.int64_t(n/rowLen), C.int64_t(rowLen), nil)
	}
	return nil
}
