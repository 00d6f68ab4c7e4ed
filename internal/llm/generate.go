package llm

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// GenerateOptions control generation. Temperature 0 is greedy decoding.
type GenerateOptions struct {
	MaxTokens   int
	Stop        []string
	Temperature float64
	TopP        float64 // 0 or 1: no nucleus cut
	Seed        uint64
}

// Generate continues prompt and returns the new text, without the stop string that ended it.
func (m *Model) Generate(ctx context.Context, prompt string, o GenerateOptions) (string, error) {
	if o.MaxTokens <= 0 {
		return "", fmt.Errorf("llm: max tokens must be positive, got %d", o.MaxTokens)
	}
	if o.Temperature < 0 || o.TopP < 0 || o.TopP > 1 {
		return "", fmt.Errorf("llm: temperature %g / top-p %g out of range", o.Temperature, o.TopP)
	}
	ids, err := m.prompt(prompt)
	if err != nil {
		return "", err
	}
	if len(ids) >= m.window {
		return "", fmt.Errorf("llm: prompt of %d tokens does not leave room in the model's window of %d", len(ids), m.window)
	}
	pos := make([]int32, len(ids))
	for i := range pos {
		pos[i] = int32(i)
	}
	logits, err := m.run(step{tokens: ids, pos: pos, rows: []int32{int32(len(ids) - 1)}, useCache: true})
	if err != nil {
		return "", err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0xda3e39cb94b95bdb))
	var out []int32
	n := len(ids)
	for len(out) < o.MaxTokens {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		next := sample(logits[0], o.Temperature, o.TopP, rng)
		if m.Tok.IsEOG(next) {
			break
		}
		out = append(out, next)
		text, err := m.Tok.Decode(out)
		if err != nil {
			return "", err
		}
		if cut, ok := cutAtStop(text, o.Stop); ok {
			return cut, nil
		}
		if n >= m.window {
			break
		}
		logits, err = m.run(step{tokens: []int32{next}, pos: []int32{int32(n)}, rows: []int32{0}, past: n, useCache: true})
		if err != nil {
			return "", err
		}
		n++
	}
	return m.Tok.Decode(out)
}

func cutAtStop(text string, stops []string) (string, bool) {
	best := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	if best < 0 {
		return text, false
	}
	return text[:best], true
}

// sample picks a token: the argmax at temperature 0, else from softmax(logits/T) cut to the top-p mass.
func sample(logits []float32, temperature, topP float64, rng *rand.Rand) int32 {
	arg := 0
	for i, v := range logits {
		if v > logits[arg] {
			arg = i
		}
	}
	if temperature == 0 {
		return int32(arg)
	}
	maxv := float64(logits[arg])
	type cand struct {
		id int
		p  float64
	}
	cands := make([]cand, len(logits))
	var sum float64
	for i, v := range logits {
		p := math.Exp((float64(v) - maxv) / temperature)
		cands[i] = cand{i, p}
		sum += p
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].p > cands[b].p })
	keep := len(cands)
	if topP > 0 && topP < 1 {
		acc := 0.0
		for i, c := range cands {
			acc += c.p / sum
			if acc >= topP {
				keep = i + 1
				break
			}
		}
	}
	var total float64
	for _, c := range cands[:keep] {
		total += c.p
	}
	r := rng.Float64() * total
	for _, c := range cands[:keep] {
		r -= c.p
		if r <= 0 {
			return int32(c.id)
		}
	}
	return int32(cands[keep-1].id)
}

// GreedyTokens continues the token ids prompt with n argmax picks through the KV cache, adding no BOS and not
// stopping at EOS: generation on exact ids, as the llama.cpp comparison runs it.
func (m *Model) GreedyTokens(prompt []int32, n int) ([]int32, error) {
	if len(prompt) == 0 || n <= 0 || len(prompt)+n-1 > m.window {
		return nil, fmt.Errorf("llm: greedy continuation of %d tokens after %d does not fit the window of %d", n, len(prompt), m.window)
	}
	pos := make([]int32, len(prompt))
	for i := range pos {
		pos[i] = int32(i)
	}
	logits, err := m.run(step{tokens: prompt, pos: pos, rows: []int32{int32(len(prompt) - 1)}, useCache: true})
	if err != nil {
		return nil, err
	}
	out := make([]int32, 0, n)
	for past := len(prompt); ; past++ {
		next := sample(logits[0], 0, 0, nil)
		out = append(out, next)
		if len(out) == n {
			return out, nil
		}
		if logits, err = m.run(step{tokens: []int32{next}, pos: []int32{int32(past)}, rows: []int32{0}, past: past, useCache: true}); err != nil {
			return nil, err
		}
	}
}
