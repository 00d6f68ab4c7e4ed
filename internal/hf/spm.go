package hf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/evomerge/evomerge/internal/tokenizer"
)

// A SentencePiece tokenizer.model is a protobuf ModelProto; the fields read and written here are
// pieces (1: piece 1, score 2, type 3), trainer_spec (2: model_type 3) and normalizer_spec
// (3: add_dummy_prefix 3). Piece types share GGUF's numbering (normal 1 ... byte 6).

const spmBPE = 2 // TrainerSpec.model_type: UNIGRAM 1, BPE 2

type spmPiece struct {
	piece string
	score float32
	typ   int32
}

type spmModel struct {
	pieces         []spmPiece
	modelType      int
	addDummyPrefix bool
}

// protoReader walks protobuf fields of one message.
type protoReader struct {
	b []byte
}

var errProtoTruncated = errors.New("truncated protobuf")

func (r *protoReader) varint() (uint64, error) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, errProtoTruncated
	}
	r.b = r.b[n:]
	return v, nil
}

// next returns the field number, wire type and, for length-delimited and fixed fields, their bytes.
func (r *protoReader) next() (field int, wire int, val uint64, data []byte, err error) {
	key, err := r.varint()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	field, wire = int(key>>3), int(key&7)
	switch wire {
	case 0:
		val, err = r.varint()
	case 1:
		if len(r.b) < 8 {
			return 0, 0, 0, nil, errProtoTruncated
		}
		data, r.b = r.b[:8], r.b[8:]
	case 2:
		var n uint64
		if n, err = r.varint(); err == nil {
			if n > uint64(len(r.b)) {
				return 0, 0, 0, nil, errProtoTruncated
			}
			data, r.b = r.b[:n], r.b[n:]
		}
	case 5:
		if len(r.b) < 4 {
			return 0, 0, 0, nil, errProtoTruncated
		}
		data, r.b = r.b[:4], r.b[4:]
	default:
		err = fmt.Errorf("unsupported protobuf wire type %d", wire)
	}
	return field, wire, val, data, err
}

// parseSPM decodes the fields of a tokenizer.model this package uses.
func parseSPM(b []byte) (*spmModel, error) {
	m := &spmModel{modelType: 1, addDummyPrefix: true}
	r := &protoReader{b}
	for len(r.b) > 0 {
		f, w, _, data, err := r.next()
		if err != nil {
			return nil, err
		}
		switch {
		case f == 1 && w == 2:
			p := spmPiece{typ: tokenizer.TypeNormal}
			pr := &protoReader{data}
			for len(pr.b) > 0 {
				pf, pw, pv, pd, err := pr.next()
				if err != nil {
					return nil, fmt.Errorf("piece %d: %v", len(m.pieces), err)
				}
				switch {
				case pf == 1 && pw == 2:
					p.piece = string(pd)
				case pf == 2 && pw == 5:
					p.score = math.Float32frombits(binary.LittleEndian.Uint32(pd))
				case pf == 3 && pw == 0:
					if pv < 1 || pv > 6 {
						return nil, fmt.Errorf("piece %d: type %d is not a SentencePiece piece type", len(m.pieces), pv)
					}
					p.typ = int32(pv)
				}
			}
			m.pieces = append(m.pieces, p)
		case f == 2 && w == 2:
			tr := &protoReader{data}
			for len(tr.b) > 0 {
				tf, tw, tv, _, err := tr.next()
				if err != nil {
					return nil, fmt.Errorf("trainer_spec: %v", err)
				}
				if tf == 3 && tw == 0 {
					m.modelType = int(min(tv, 100))
				}
			}
		case f == 3 && w == 2:
			nr := &protoReader{data}
			for len(nr.b) > 0 {
				nf, nw, nv, _, err := nr.next()
				if err != nil {
					return nil, fmt.Errorf("normalizer_spec: %v", err)
				}
				if nf == 3 && nw == 0 {
					m.addDummyPrefix = nv != 0
				}
			}
		}
	}
	if len(m.pieces) == 0 {
		return nil, errors.New("no pieces")
	}
	return m, nil
}

// spmVocab is a SentencePiece vocabulary for a model of n embedding rows (ids beyond the pieces are padding).
func spmVocab(b []byte, n int) (*vocab, error) {
	m, err := parseSPM(b)
	if err != nil {
		return nil, err
	}
	if m.modelType != spmBPE {
		return nil, fmt.Errorf("trainer_spec.model_type %d is not BPE (2): llama.cpp's SentencePiece tokenizer is BPE only", m.modelType)
	}
	if len(m.pieces) > n {
		return nil, fmt.Errorf("%d pieces for a model of %d embedding rows", len(m.pieces), n)
	}
	v := &vocab{model: "llama", tokens: make([]string, n), scores: make([]float32, n), types: make([]int32, n),
		bos: -1, eos: -1, unk: -1, pad: -1, addSpacePrefix: &m.addDummyPrefix}
	for i := range v.tokens {
		if i < len(m.pieces) {
			p := m.pieces[i]
			v.tokens[i], v.scores[i], v.types[i] = p.piece, p.score, p.typ
			switch p.typ {
			case tokenizer.TypeUnknown:
				if v.unk < 0 {
					v.unk = i
				}
			}
			continue
		}
		v.tokens[i], v.scores[i], v.types[i] = fmt.Sprintf("[PAD%d]", i), -1000, tokenizer.TypeUnused
	}
	// SentencePiece's defaults: <s> and </s> when present.
	for i, t := range v.tokens {
		if t == "<s>" && v.bos < 0 {
			v.bos = i
		}
		if t == "</s>" && v.eos < 0 {
			v.eos = i
		}
	}
	return v, nil
}

// appendSPM encodes a tokenizer.model for a SentencePiece vocabulary (BPE, byte fallback).
func appendSPM(dst []byte, tokens []string, scores []float32, types []int32, addDummyPrefix bool) []byte {
	field := func(b []byte, f, wire int) []byte { return binary.AppendUvarint(b, uint64(f<<3|wire)) }
	bytesField := func(b []byte, f int, data []byte) []byte {
		b = field(b, f, 2)
		b = binary.AppendUvarint(b, uint64(len(data)))
		return append(b, data...)
	}
	varintField := func(b []byte, f int, v uint64) []byte { return binary.AppendUvarint(field(b, f, 0), v) }
	for i, t := range tokens {
		var p []byte
		p = bytesField(p, 1, []byte(t))
		p = field(p, 2, 5)
		p = binary.LittleEndian.AppendUint32(p, math.Float32bits(scores[i]))
		ty := types[i]
		if ty < 1 || ty > 6 {
			ty = tokenizer.TypeNormal
		}
		if ty != tokenizer.TypeNormal {
			p = varintField(p, 3, uint64(ty))
		}
		dst = bytesField(dst, 1, p)
	}
	var tr []byte
	tr = varintField(tr, 3, spmBPE)
	tr = varintField(tr, 35, 1) // byte_fallback
	dst = bytesField(dst, 2, tr)
	var ns []byte
	ns = bytesField(ns, 1, []byte("identity"))
	dummy := uint64(0)
	if addDummyPrefix {
		dummy = 1
	}
	ns = varintField(ns, 3, dummy)
	ns = varintField(ns, 4, 0) // remove_extra_whitespaces
	ns = varintField(ns, 5, 1) // escape_whitespaces
	return bytesField(dst, 3, ns)
}
