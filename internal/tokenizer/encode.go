package tokenizer

import (
	"container/heap"
	"fmt"
	"strings"
	"sync"
)

// fragment is a stretch of the input: raw text, or a user-defined token found in it.
type fragment struct {
	text  string
	token int32 // -1 for text
}

// partition cuts out user-defined tokens, longest first, as llama.cpp's tokenizer_st_partition does.
func (t *Tokenizer) partition(s string) []fragment {
	frags := []fragment{{text: s, token: -1}}
	for _, id := range t.specials {
		piece := t.tokens[id]
		if !strings.Contains(s, piece) {
			continue
		}
		var out []fragment
		for _, f := range frags {
			if f.token >= 0 {
				out = append(out, f)
				continue
			}
			rest := f.text
			for {
				i := strings.Index(rest, piece)
				if i < 0 {
					if rest != "" {
						out = append(out, fragment{text: rest, token: -1})
					}
					break
				}
				left := rest[:i]
				if t.attrs[id]&attrLStrip != 0 {
					left = strings.TrimRight(left, " \t\n\v\f\r")
				}
				if left != "" {
					out = append(out, fragment{text: left, token: -1})
				}
				out = append(out, fragment{token: id})
				rest = rest[i+len(piece):]
				if t.attrs[id]&attrRStrip != 0 {
					rest = strings.TrimLeft(rest, " \t\n\v\f\r")
				}
			}
		}
		frags = out
	}
	return frags
}

// Encode tokenizes s as llama.cpp's llama_tokenize(s, add_special = false, parse_special = false): no BOS
// or EOS, and control-token text stays text.
func (t *Tokenizer) Encode(s string) ([]int32, error) {
	var out []int32
	if s == "" {
		return out, nil
	}
	prevSpecial := true // SentencePiece prefixes a space to the first text and to text after a token
	for _, f := range t.partition(s) {
		if f.token >= 0 {
			out = append(out, f.token)
			prevSpecial = true
			continue
		}
		var err error
		if t.kind == SPM {
			text := f.text
			if t.addSpacePrefix && prevSpecial {
				text = " " + text
			}
			out, err = t.encodeSPM(strings.ReplaceAll(text, " ", "▁"), out)
		} else {
			out = t.encodeBPE(f.text, out)
		}
		if err != nil {
			return nil, err
		}
		prevSpecial = false
	}
	return out, nil
}

// EncodePrompt is Encode with BOS / EOS added where the vocabulary asks for them (add_special = true).
func (t *Tokenizer) EncodePrompt(s string) ([]int32, error) {
	ids, err := t.Encode(s)
	if err != nil {
		return nil, err
	}
	if t.addBOS {
		ids = append([]int32{t.bos}, ids...)
	}
	if t.addEOS {
		ids = append(ids, t.eos)
	}
	return ids, nil
}

// symbol is a run of the input during merging, linked to its neighbours.
type symbol struct {
	start, n   int
	prev, next int
	id         int32 // BPE: the token this run is, -1 if none
}

// spmBigram is a candidate SentencePiece merge; the best has the highest score, then the leftmost start.
type spmBigram struct {
	left, right int
	score       float32
	size        int
}

type spmQueue []spmBigram

func (q spmQueue) Len() int { return len(q) }
func (q spmQueue) Less(i, j int) bool {
	return q[i].score > q[j].score || q[i].score == q[j].score && q[i].left < q[j].left
}
func (q spmQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *spmQueue) Push(x any)   { *q = append(*q, x.(spmBigram)) }
func (q *spmQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// encodeSPM merges characters of text pairwise, always the pair whose joined piece scores highest, as
// llama.cpp's llm_tokenizer_spm_session does; runs that are not tokens fall back to byte tokens.
func (t *Tokenizer) encodeSPM(text string, out []int32) ([]int32, error) {
	var syms []symbol
	for off := 0; off < len(text); {
		n := utf8Len(text[off])
		if n > len(text)-off {
			n = len(text) - off
		}
		syms = append(syms, symbol{start: off, n: n, prev: len(syms) - 1, next: len(syms) + 1})
		off += n
	}
	if len(syms) == 0 {
		return out, nil
	}
	syms[len(syms)-1].next = -1
	q := &spmQueue{}
	try := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		piece := text[syms[l].start : syms[r].start+syms[r].n]
		id, ok := t.ids[piece]
		if !ok {
			return
		}
		heap.Push(q, spmBigram{left: l, right: r, score: t.scores[id], size: len(piece)})
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for q.Len() > 0 {
		b := heap.Pop(q).(spmBigram)
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue // stale: one side has merged since
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		try(l.prev, b.left)
		try(b.left, l.next)
	}
	for i := 0; i != -1; i = syms[i].next {
		piece := text[syms[i].start : syms[i].start+syms[i].n]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(piece); j++ {
			id := t.byteTok[piece[j]]
			if id < 0 {
				return nil, fmt.Errorf("tokenizer: byte 0x%02X has no token (neither <0x%02X> nor the byte itself)", piece[j], piece[j])
			}
			out = append(out, id)
		}
	}
	return out, nil
}

// bpeBigram is a candidate BPE merge; the best has the lowest rank, then the leftmost start.
type bpeBigram struct {
	left, right int
	lid, rid    int32
	rank        int32
	id          int32
}

type bpeQueue []bpeBigram

func (q bpeQueue) Len() int { return len(q) }
func (q bpeQueue) Less(i, j int) bool {
	return q[i].rank < q[j].rank || q[i].rank == q[j].rank && q[i].left < q[j].left
}
func (q bpeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *bpeQueue) Push(x any)   { *q = append(*q, x.(bpeBigram)) }
func (q *bpeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// bpeScratch is reused across calls to keep encoding allocation-light.
type bpeScratch struct {
	cpts []rune
	word []byte
	syms []symbol
	q    bpeQueue
}

var scratchPool = sync.Pool{New: func() any { return &bpeScratch{} }}

// encodeBPE pre-tokenizes text, maps each piece to GPT-2's byte-level characters and merges each piece by
// rank, as llama.cpp's llm_tokenizer_bpe_session does.
func (t *Tokenizer) encodeBPE(text string, out []int32) []int32 {
	sc := scratchPool.Get().(*bpeScratch)
	defer scratchPool.Put(sc)
	sc.cpts = decodeCodepoints(text, sc.cpts)
	cpts := sc.cpts
	start := 0
	for _, n := range t.preTok.split(cpts) {
		var utf []byte
		for _, r := range cpts[start : start+n] {
			utf = appendCodepoint(utf, r)
		}
		start += n
		sc.word = sc.word[:0]
		for _, b := range utf {
			sc.word = appendCodepoint(sc.word, byteToRune[b])
		}
		out = t.mergeWord(string(sc.word), sc, out)
	}
	return out
}

func (t *Tokenizer) mergeWord(word string, sc *bpeScratch, out []int32) []int32 {
	if t.ignoreMerges {
		if id, ok := t.ids[word]; ok {
			return append(out, id)
		}
	}
	syms := sc.syms[:0]
	for off := 0; off < len(word); {
		n := utf8Len(word[off])
		if n > len(word)-off {
			n = len(word) - off
		}
		id, ok := t.ids[word[off:off+n]]
		if !ok {
			id = -1
		}
		syms = append(syms, symbol{start: off, n: n, prev: len(syms) - 1, next: len(syms) + 1, id: id})
		off += n
	}
	if len(syms) == 0 {
		return out
	}
	syms[len(syms)-1].next = -1
	q := &sc.q
	*q = (*q)[:0]
	try := func(l, r int) {
		if l < 0 || r < 0 || syms[l].id < 0 || syms[r].id < 0 {
			return
		}
		m, ok := t.merges[uint64(uint32(syms[l].id))<<32|uint64(uint32(syms[r].id))]
		if !ok {
			return
		}
		heap.Push(q, bpeBigram{left: l, right: r, lid: syms[l].id, rid: syms[r].id, rank: m.rank, id: m.id})
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for q.Len() > 0 {
		b := heap.Pop(q).(bpeBigram)
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.id != b.lid || r.id != b.rid || l.next != b.right {
			continue // stale: one side has merged since
		}
		l.n += r.n
		l.id = b.id
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		try(l.prev, b.left)
		try(b.left, l.next)
	}
	for i := 0; i != -1; i = syms[i].next {
		s := syms[i]
		if s.id >= 0 {
			out = append(out, s.id)
			continue
		}
		// Not a token: llama.cpp tries each byte of the piece as a token and drops the rest.
		for j := s.start; j < s.start+s.n; j++ {
			if id, ok := t.ids[word[j:j+1]]; ok {
				out = append(out, id)
			}
		}
	}
	sc.syms = syms
	return out
}

// Decode turns ids back into text: byte tokens become their bytes, "▁" a space (SentencePiece), GPT-2's
// byte-level characters their bytes (BPE), user-defined tokens their text; control and unknown tokens give
// nothing. The space SentencePiece prefixed is removed from the first token. Unlike llama.cpp's detokenizer
// it never "cleans up" spaces before punctuation, so that Decode inverts Encode.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	var b []byte
	for i, id := range ids {
		if id < 0 || int(id) >= len(t.tokens) {
			return "", fmt.Errorf("tokenizer: token id %d is outside the vocabulary of %d", id, len(t.tokens))
		}
		before := len(b)
		b = t.appendPiece(b, id)
		if i == 0 && t.addSpacePrefix && len(b) > before && b[before] == ' ' {
			b = append(b[:before], b[before+1:]...)
		}
	}
	return string(b), nil
}

func (t *Tokenizer) appendPiece(b []byte, id int32) []byte {
	a := t.attrs[id]
	text := t.tokens[id]
	switch {
	case a&(attrControl|attrUnknown) != 0:
		return b
	case a&attrUserDefined != 0:
		return append(b, text...)
	case t.kind == SPM && a&attrNormal != 0:
		return append(b, strings.ReplaceAll(text, "▁", " ")...)
	case t.kind == SPM && a&attrByte != 0:
		var v byte
		if len(text) == 6 && strings.HasPrefix(text, "<0x") {
			fmt.Sscanf(text[3:5], "%02X", &v)
		}
		return append(b, v)
	case t.kind == BPE && a&attrNormal != 0:
		for _, r := range text {
			if c, ok := runeToByte[r]; ok {
				b = append(b, c)
			} else {
				b = appendCodepoint(b, r) // not a byte-level character: keep it as it is
			}
		}
		return b
	}
	return b // unused or undefined tokens, suppressed like control tokens
}
