package tokenizer

import (
	"sync"
	"unicode"
)

// Character classes as llama.cpp's pre-tokenizers see them: one category per code point plus a whitespace
// bit (the Unicode White_Space property). Go's unicode tables stand in for llama.cpp's generated ones.
const (
	catUndefined = iota // unassigned code points
	catNumber           // \p{N}
	catLetter           // \p{L}
	catSeparator        // \p{Z}
	catMark             // \p{M}
	catPunct            // \p{P}
	catSymbol           // \p{S}
	catControl          // \p{C}
	catMask      = 0x0f
	flagSpace    = 0x10
)

var (
	bmpFlagsOnce sync.Once
	bmpFlags     []uint8 // flags of U+0000..U+FFFF, computed once
)

func computeFlags(r rune) uint8 {
	var c uint8
	switch {
	case unicode.IsLetter(r):
		c = catLetter
	case unicode.IsNumber(r):
		c = catNumber
	case unicode.IsMark(r):
		c = catMark
	case unicode.IsPunct(r):
		c = catPunct
	case unicode.IsSymbol(r):
		c = catSymbol
	case unicode.In(r, unicode.Z):
		c = catSeparator
	case unicode.In(r, unicode.C):
		c = catControl
	default:
		c = catUndefined
	}
	if unicode.Is(unicode.White_Space, r) {
		c |= flagSpace
	}
	return c
}

// flagsOf returns the category and whitespace bit of r.
func flagsOf(r rune) uint8 {
	if r >= 0 && r < 0x10000 {
		bmpFlagsOnce.Do(func() {
			bmpFlags = make([]uint8, 0x10000)
			for i := range bmpFlags {
				bmpFlags[i] = computeFlags(rune(i))
			}
		})
		return bmpFlags[r]
	}
	if r > unicode.MaxRune || r < 0 {
		return catUndefined
	}
	return computeFlags(r)
}

func isLetter(f uint8) bool { return f&catMask == catLetter }
func isNumber(f uint8) bool { return f&catMask == catNumber }
func isSpace(f uint8) bool  { return f&flagSpace != 0 }

// decodeCodepoints splits s into code points the way llama.cpp does: the UTF-8 lead byte alone decides the
// length (no check for overlong forms or surrogates), and a byte that cannot start or complete a sequence
// becomes U+FFFD.
func decodeCodepoints(s string, dst []rune) []rune {
	dst = dst[:0]
	for i := 0; i < len(s); {
		b := s[i]
		var r rune
		n := 1
		switch {
		case b < 0x80:
			r = rune(b)
		case b&0xe0 == 0xc0 && i+1 < len(s) && cont(s[i+1]):
			r, n = rune(b&0x1f)<<6|rune(s[i+1]&0x3f), 2
		case b&0xf0 == 0xe0 && i+2 < len(s) && cont(s[i+1]) && cont(s[i+2]):
			r, n = rune(b&0x0f)<<12|rune(s[i+1]&0x3f)<<6|rune(s[i+2]&0x3f), 3
		case b&0xf8 == 0xf0 && i+3 < len(s) && cont(s[i+1]) && cont(s[i+2]) && cont(s[i+3]):
			r, n = rune(b&0x07)<<18|rune(s[i+1]&0x3f)<<12|rune(s[i+2]&0x3f)<<6|rune(s[i+3]&0x3f), 4
		default:
			r = 0xFFFD
		}
		if r > unicode.MaxRune {
			r = 0xFFFD // llama.cpp cannot re-encode these either
		}
		dst = append(dst, r)
		i += n
	}
	return dst
}

func cont(b byte) bool { return b&0xc0 == 0x80 }

// appendCodepoint writes r as UTF-8 without Go's surrogate replacement, as llama.cpp re-encodes code points.
func appendCodepoint(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xc0|byte(r>>6), 0x80|byte(r&0x3f))
	case r < 0x10000:
		return append(dst, 0xe0|byte(r>>12), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
	default:
		return append(dst, 0xf0|byte(r>>18), 0x80|byte(r>>12&0x3f), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
	}
}

// utf8Len is the sequence length SentencePiece assumes from a lead byte (llama.cpp's unicode_len_utf8).
func utf8Len(b byte) int {
	switch b >> 4 {
	case 0xc, 0xd:
		return 2
	case 0xe:
		return 3
	case 0xf:
		return 4
	}
	return 1
}

// GPT-2's byte-level alphabet: every byte is shown as a printable code point, so that BPE merges work on
// text. Printable Latin-1 bytes stand for themselves, the rest take code points from U+0100 up.
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
	byteToText [256]string
)

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if b >= 0x21 && b <= 0x7e || b >= 0xa1 && b <= 0xac || b >= 0xae && b <= 0xff {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = 256 + n
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
		byteToText[b] = string(byteToRune[b])
	}
}
