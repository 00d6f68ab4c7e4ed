package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// halfTable maps every IEEE half bit pattern to its float32 value: a 256 KiB table
// that stays in L2 and beats bit manipulation in the decode loop.
var halfTable = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = halfToFloat(uint16(i))
	}
	return &t
}()

func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal half: value = man * 2^-24
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// FloatToHalf rounds to nearest even, with overflow to infinity and NaN kept NaN.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e)
		half := man >> shift
		rem := man & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is the correct rounding
	}
	return sign | uint16(half)
}

// FloatToBF16 rounds to nearest even; NaN stays NaN.
func FloatToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// Decode converts len(dst) elements of src (raw little-endian bytes of dtype dt) to float32.
func Decode(dt DType, src []byte, dst []float32) error {
	es, err := dt.Size()
	if err != nil {
		return err
	}
	if int64(len(src)) != int64(len(dst))*es {
		return fmt.Errorf("decode %s: %d bytes for %d elements", dt, len(src), len(dst))
	}
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		t := halfTable
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = t[uint16(src[2*i])|uint16(src[2*i+1])<<8]
		}
	case BF16:
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(src[2*i])<<16 | uint32(src[2*i+1])<<24)
		}
	default:
		return fmt.Errorf("decode: dtype %s is not a float type", dt)
	}
	return nil
}

// Encode converts src to raw little-endian bytes of dtype dt in dst.
func Encode(dt DType, src []float32, dst []byte) error {
	es, err := dt.Size()
	if err != nil {
		return err
	}
	if int64(len(dst)) != int64(len(src))*es {
		return fmt.Errorf("encode %s: %d bytes for %d elements", dt, len(dst), len(src))
	}
	switch dt {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		dst = dst[:2*len(src)]
		for i, v := range src {
			h := FloatToHalf(v)
			dst[2*i] = byte(h)
			dst[2*i+1] = byte(h >> 8)
		}
	case BF16:
		dst = dst[:2*len(src)]
		for i, v := range src {
			h := FloatToBF16(v)
			dst[2*i] = byte(h)
			dst[2*i+1] = byte(h >> 8)
		}
	default:
		return fmt.Errorf("encode: dtype %s is not a float type", dt)
	}
	return nil
}
