package llm

import (
	"fmt"
	"slices"

	"github.com/evomerge/evomerge/internal/ggml"
)

// step describes one forward pass over new tokens of a single sequence.
type step struct {
	tokens   []int32
	pos      []int32 // position of each token
	segments []int   // optional: tokens of different segments do not see each other
	rows     []int32 // which tokens to return logits for
	past     int     // tokens already in the cache
	useCache bool
}

// ubatch is the most tokens one graph processes when a long step goes through the cache: longer steps run in
// chunks, each attending to the cache written by the ones before it. Attention over a chunk of L tokens after P
// cached ones computes L·(P+L) scores instead of a full square over the step (half of which the causal mask
// throws away), and the score matrix stays small (llama.cpp's default micro-batch is the same 512).
const ubatch = 512

// run computes the logits [len(rows)][vocab] of one step.
func (m *Model) run(s step) ([][]float32, error) {
	n := len(s.tokens)
	if n == 0 || len(s.rows) == 0 {
		return nil, nil
	}
	if s.useCache && n > ubatch && s.segments == nil && slices.IsSorted(s.rows) {
		return m.runChunked(s)
	}
	if s.past+n > m.window {
		return nil, fmt.Errorf("llm: %d tokens exceed the model's window of %d", s.past+n, m.window)
	}
	for _, t := range s.tokens {
		if t < 0 || int(t) >= m.Config.Vocab {
			return nil, fmt.Errorf("llm: token id %d outside the vocabulary of %d", t, m.Config.Vocab)
		}
	}
	if s.useCache && m.cache == nil {
		kc, err := newKVCache(m.backend, m.Config, m.window)
		if err != nil {
			return nil, err
		}
		m.cache = kc
	}
	graphSize := 64*m.Config.Layers + 64
	c := ggml.NewContext(2*graphSize, graphSize, false)
	defer c.Free()
	g := c.NewGraph(graphSize, false)
	tok := c.New(ggml.I32, int64(n))
	pos := c.New(ggml.I32, int64(n))
	span := s.past + n // cache positions the step's attention reads
	if s.useCache {
		span = m.cache.span(span)
		m.cache.readable(span)
	}
	mask := c.New(ggml.F32, int64(span), int64(n))
	rows := c.New(ggml.I32, int64(len(s.rows)))
	for _, t := range []ggml.Tensor{tok, pos, mask, rows} {
		t.SetInput()
	}
	in := Batch{Tokens: tok, Pos: pos, Mask: mask, Rows: rows, L: n, B: 1, Past: s.past}
	if s.useCache {
		in.Cache = m.cache
	}
	logits := Forward(c, g, m.Config, &m.W, in)
	logits.SetOutput()
	g.Expand(logits)
	if err := m.backend.AllocGraph(g); err != nil {
		return nil, err
	}
	tok.SetI32(s.tokens)
	pos.SetI32(s.pos)
	mask.SetF32(causalMask(s.past, n, span, s.segments))
	rows.SetI32(s.rows)
	if err := m.backend.Compute(g); err != nil {
		return nil, err
	}
	flat := logits.F32()
	V := m.Config.Vocab
	out := make([][]float32, len(s.rows))
	for i := range out {
		out[i] = flat[i*V : (i+1)*V]
	}
	return out, nil
}

// runChunked runs a long step through the cache in chunks of at most ubatch tokens (rows sorted ascending).
func (m *Model) runChunked(s step) ([][]float32, error) {
	var out [][]float32
	r := 0
	for start := 0; start < len(s.tokens); start += ubatch {
		end := min(start+ubatch, len(s.tokens))
		var rows []int32
		for ; r < len(s.rows) && int(s.rows[r]) < end; r++ {
			rows = append(rows, s.rows[r]-int32(start))
		}
		placeholder := len(rows) == 0
		if placeholder {
			rows = []int32{0} // the chunk must still fill the cache (run computes nothing without rows); its row is dropped
		}
		logits, err := m.run(step{tokens: s.tokens[start:end], pos: s.pos[start:end], rows: rows, past: s.past + start, useCache: true})
		if err != nil {
			return nil, err
		}
		if !placeholder {
			out = append(out, logits...)
		}
	}
	return out, nil
}

// Logits runs tokens through the model from position 0 without the cache and returns every position's
// logits. It is the plain reference path (tests, perplexity on short texts).
func (m *Model) Logits(tokens []int32) ([][]float32, error) {
	n := len(tokens)
	pos, rows := make([]int32, n), make([]int32, n)
	for i := range pos {
		pos[i], rows[i] = int32(i), int32(i)
	}
	return m.run(step{tokens: tokens, pos: pos, rows: rows})
}
