package eval

import (
	"context"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// itemScores holds per-item values of every metric a task reports.
type itemScores map[string][]float64

func (s itemScores) add(metric string, v float64) { s[metric] = append(s[metric], v) }

// scoreAll sends reqs to the LM in chunks of at most maxBatch (0: one call)
// and checks every answer, so a broken engine cannot turn into a score.
func scoreAll(ctx context.Context, lm LM, reqs []Request, maxBatch int, owner func(int) string) ([]Result, error) {
	out := make([]Result, 0, len(reqs))
	for start := 0; start < len(reqs); {
		end := len(reqs)
		if maxBatch > 0 && start+maxBatch < end {
			end = start + maxBatch
			// Do not split a run of requests sharing a context.
			for end < len(reqs) && end-start < 2*maxBatch && reqs[end].Context == reqs[end-1].Context {
				end++
			}
		}
		res, err := lm.Score(ctx, reqs[start:end])
		if err != nil {
			return nil, err
		}
		if len(res) != end-start {
			return nil, fmt.Errorf("model returned %d scores for %d requests", len(res), end-start)
		}
		for k, r := range res {
			if math.IsNaN(r.LogProb) || math.IsInf(r.LogProb, 0) || r.LogProb > 1e-6 {
				return nil, fmt.Errorf("item %s: model returned log-probability %v", owner(start+k), r.LogProb)
			}
			if r.Tokens <= 0 {
				return nil, fmt.Errorf("item %s: model scored %d tokens of a non-empty continuation", owner(start+k), r.Tokens)
			}
		}
		out = append(out, res...)
		start = end
	}
	return out, nil
}

// argmax returns the first index of the largest value, as numpy does.
func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func boolScore(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// scoreMultipleChoice: acc is the argmax of summed log-likelihoods, acc_norm
// the argmax after dividing each by its choice's length in characters
// (Unicode code points, as Python's len; the leading space not counted).
func scoreMultipleChoice(ctx context.Context, lm LM, p *prepared, maxBatch int) (itemScores, error) {
	lls, err := choiceLogLiks(ctx, lm, p, maxBatch)
	if err != nil {
		return nil, err
	}
	s := itemScores{}
	for i, it := range p.items {
		ll := lls[i]
		norm := make([]float64, len(it.Choices))
		for j, ch := range it.Choices {
			norm[j] = ll[j] / float64(utf8.RuneCountInString(ch))
		}
		s.add(MetricAcc, boolScore(argmax(ll) == it.Gold))
		s.add(MetricAccNorm, boolScore(argmax(norm) == it.Gold))
	}
	return s, nil
}

// scoreMC2 is TruthfulQA's mc2: the probability mass of the true answers
// normalised over all answers, each answer's probability exp(log-lik).
// The exponentials are shifted by the largest log-likelihood, which changes
// nothing mathematically but avoids 0/0 when every answer is unlikely.
func scoreMC2(ctx context.Context, lm LM, p *prepared, maxBatch int) (itemScores, error) {
	lls, err := choiceLogLiks(ctx, lm, p, maxBatch)
	if err != nil {
		return nil, err
	}
	s := itemScores{}
	for i, it := range p.items {
		ll := lls[i]
		top := ll[argmax(ll)]
		var num, den float64
		for j, l := range ll {
			e := math.Exp(l - top)
			den += e
			if it.Labels[j] == 1 {
				num += e
			}
		}
		s.add(MetricMC2, num/den)
	}
	return s, nil
}

// scorePartial is Winogrande's partial scoring: each option is substituted
// into the context and only the shared suffix is scored.
func scorePartial(ctx context.Context, lm LM, p *prepared, maxBatch int) (itemScores, error) {
	var reqs []Request
	var owner []int
	for i, it := range p.items {
		for _, c := range it.Contexts {
			reqs = append(reqs, Request{Context: p.prefix[i] + c, Continuation: targetDelimiter + it.Suffix})
			owner = append(owner, i)
		}
	}
	res, err := scoreAll(ctx, lm, reqs, maxBatch, func(k int) string { return p.items[owner[k]].ID })
	if err != nil {
		return nil, err
	}
	s := itemScores{}
	k := 0
	for _, it := range p.items {
		ll := make([]float64, len(it.Contexts))
		for j := range ll {
			ll[j] = res[k].LogProb
			k++
		}
		s.add(MetricAcc, boolScore(argmax(ll) == it.Gold))
	}
	return s, nil
}

// scoreGenerate generates greedily until a stop string and scores the
// extracted answer by exact match (strict and, if set, flexible).
func scoreGenerate(ctx context.Context, lm LM, p *prepared) (itemScores, error) {
	s := itemScores{}
	opts := GenOptions{MaxTokens: p.spec.MaxTokens, Stop: p.spec.Until}
	for i, it := range p.items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, err := lm.Generate(ctx, p.prefix[i]+it.Query, opts)
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", it.ID, err)
		}
		out = cutAtStop(out, p.spec.Until)
		s.add(MetricExactMatch, boolScore(p.ext.match(p.ext.strictAnswer(out), it.Answer)))
		if p.ext.flexible != nil {
			s.add(MetricExactFlexible, boolScore(p.ext.match(p.ext.flexibleAnswer(out), it.Answer)))
		}
	}
	return s, nil
}

// cutAtStop truncates at the first stop string, in case the model's own
// stopping let one through.
func cutAtStop(s string, stops []string) string {
	for _, st := range stops {
		if st == "" {
			continue
		}
		if k := strings.Index(s, st); k >= 0 {
			s = s[:k]
		}
	}
	return s
}

// perplexity totals of a text corpus.
type perplexity struct {
	nll    float64
	tokens int
	bytes  int
}

// scorePerplexity scores each text after the beginning of sequence.
func scorePerplexity(ctx context.Context, lm LM, p *prepared, maxBatch int) (perplexity, error) {
	reqs := make([]Request, len(p.items))
	for i, it := range p.items {
		reqs[i] = Request{Context: "", Continuation: it.Text}
	}
	res, err := scoreAll(ctx, lm, reqs, maxBatch, func(k int) string { return p.items[k].ID })
	if err != nil {
		return perplexity{}, err
	}
	var pp perplexity
	for i, r := range res {
		pp.nll -= r.LogProb
		pp.tokens += r.Tokens
		pp.bytes += len(p.items[i].Text)
	}
	return pp, nil
}

// choiceLogLiks scores every choice of every item as a continuation of the item's prompt (all in one
// batch, choices of an item adjacent so the engine computes their shared context once) and returns the
// log-likelihoods per item and choice.
func choiceLogLiks(ctx context.Context, lm LM, p *prepared, maxBatch int) ([][]float64, error) {
	var reqs []Request
	var owner []int
	for i, it := range p.items {
		c := p.prefix[i] + it.Query
		for _, ch := range it.Choices {
			reqs = append(reqs, Request{Context: c, Continuation: targetDelimiter + ch})
			owner = append(owner, i)
		}
	}
	res, err := scoreAll(ctx, lm, reqs, maxBatch, func(k int) string { return p.items[owner[k]].ID })
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(p.items))
	k := 0
	for i, it := range p.items {
		out[i] = make([]float64, len(it.Choices))
		for j := range out[i] {
			out[i][j] = res[k].LogProb
			k++
		}
	}
	return out, nil
}
