package llm

import (
	"context"
	"fmt"
	"math"
)

// Pair is a (context, continuation) to score.
type Pair struct {
	Context, Continuation string
}

// PairScore is the sum of the log-probabilities of a continuation's tokens given its context, whether every
// one of them was the model's greedy (argmax) choice, and how many tokens it had.
type PairScore struct {
	LogProb float64
	Greedy  bool
	Tokens  int
}

// Score scores each pair. Pairs that share a context are scored together: the context is computed once and
// their continuations run in one batch over its cached keys and values. An empty Context means "after BOS".
func (m *Model) Score(ctx context.Context, pairs []Pair) ([]PairScore, error) {
	out := make([]PairScore, len(pairs))
	groups := map[string][]int{}
	var order []string
	for i, p := range pairs {
		if p.Continuation == "" {
			return nil, fmt.Errorf("pair %d: %w", i, errEmptyContinuation)
		}
		if _, ok := groups[p.Context]; !ok {
			order = append(order, p.Context)
		}
		groups[p.Context] = append(groups[p.Context], i)
	}
	for _, c := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := m.scoreGroup(c, groups[c], pairs, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (m *Model) prompt(text string) ([]int32, error) {
	ids, err := m.Tok.Encode(text)
	if err != nil {
		return nil, err
	}
	if m.Tok.AddBOS() {
		ids = append([]int32{m.Tok.BOS()}, ids...)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("llm: empty context and the tokenizer has no BOS token")
	}
	return ids, nil
}

func (m *Model) scoreGroup(context string, idx []int, pairs []Pair, out []PairScore) error {
	ctxTok, err := m.prompt(context)
	if err != nil {
		return err
	}
	conts := make([][]int32, len(idx))
	for k, i := range idx {
		if conts[k], err = m.Tok.Encode(pairs[i].Continuation); err != nil {
			return fmt.Errorf("pair %d: %w", i, err)
		}
		if len(conts[k]) == 0 {
			return fmt.Errorf("pair %d: %w", i, errEmptyContinuation)
		}
		if n := len(ctxTok) + len(conts[k]); n > m.window {
			return fmt.Errorf("pair %d: context and continuation are %d tokens, longer than the model's window of %d", i, n, m.window)
		}
	}
	scores, err := m.ScoreTokens(ctxTok, conts)
	if err != nil {
		return err
	}
	for k, i := range idx {
		out[i] = scores[k]
	}
	return nil
}

// ScoreTokens scores continuations (token ids) after one context (token ids, BOS included if the model wants
// one): the context runs once, its last position giving the first continuation token's distribution; the
// continuations then run in batches over its cached keys and values, each seeing the context and its own
// earlier tokens only. Logits are computed only for the positions scored: the context's last one and every
// continuation token but the last.
func (m *Model) ScoreTokens(ctxTok []int32, conts [][]int32) ([]PairScore, error) {
	if len(ctxTok) == 0 {
		return nil, fmt.Errorf("llm: empty context")
	}
	for k, c := range conts {
		if len(c) == 0 {
			return nil, fmt.Errorf("continuation %d: %w", k, errEmptyContinuation)
		}
		if n := len(ctxTok) + len(c); n > m.window {
			return nil, fmt.Errorf("continuation %d: context and continuation are %d tokens, longer than the model's window of %d", k, n, m.window)
		}
	}
	out := make([]PairScore, len(conts))
	Lc := len(ctxTok)
	pos := make([]int32, Lc)
	for i := range pos {
		pos[i] = int32(i)
	}
	last, err := m.run(step{tokens: ctxTok, pos: pos, rows: []int32{int32(Lc - 1)}, useCache: true})
	if err != nil {
		return nil, err
	}
	// Continuations go through in batches that fit in the cache after the context.
	for start := 0; start < len(conts); {
		var tokens, tpos, rows []int32
		var segs []int
		end := start
		for end < len(conts) {
			extra := len(conts[end]) - 1
			if end > start && Lc+len(tokens)+extra > m.window {
				break
			}
			for j := 0; j < extra; j++ {
				tokens = append(tokens, conts[end][j])
				tpos = append(tpos, int32(Lc+j))
				rows = append(rows, int32(len(rows)))
				segs = append(segs, end)
			}
			end++
		}
		logits, err := m.run(step{tokens: tokens, pos: tpos, segments: segs, rows: rows, past: Lc, useCache: true})
		if err != nil {
			return nil, err
		}
		r := 0
		for k := start; k < end; k++ {
			s := PairScore{Greedy: true, Tokens: len(conts[k])}
			for j, t := range conts[k] {
				if t < 0 || int(t) >= m.Config.Vocab {
					return nil, fmt.Errorf("llm: continuation %d: token id %d outside the vocabulary of %d", k, t, m.Config.Vocab)
				}
				dist := last[0]
				if j > 0 {
					dist = logits[r]
					r++
				}
				lp, greedy := logProb(dist, t)
				s.LogProb += lp
				s.Greedy = s.Greedy && greedy
			}
			out[k] = s
		}
		start = end
	}
	return out, nil
}

// logProb is log softmax(logits)[t] and whether t is the argmax.
func logProb(logits []float32, t int32) (float64, bool) {
	maxv, arg := math.Inf(-1), 0
	for i, v := range logits {
		if float64(v) > maxv {
			maxv, arg = float64(v), i
		}
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - maxv)
	}
	return float64(logits[t]) - maxv - math.Log(sum), arg == int(t)
}
