package llm

import (
	"fmt"

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

// run computes the logits [len(rows)][vocab] of one step.
func (m *Model) run(s step) ([][]float32, error) {
	n := len(s.tokens)
	if n == 0 || len(s.rows) == 0 {
		return nil, nil
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
	mask := c.New(ggml.F32, int64(s.past+n), int64(n))
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
	mask.SetF32(CausalMask(s.past, n, s.segments))
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
