// Package engine adapts the project's llm engine to eval.LM. It is the only
// part of evaluation that needs cgo, so the rest of eval builds and tests
// without it.
package engine

import (
	"context"

	"github.com/evomerge/evomerge/internal/eval"
	"github.com/evomerge/evomerge/internal/llm"
)

// Model is an *llm.Model seen as an eval.LM.
type Model struct{ m *llm.Model }

// FromModel wraps m. Scoring uses the engine's shared-context path (a
// context shared by several continuations is computed once).
func FromModel(m *llm.Model) *Model { return &Model{m: m} }

// Score implements eval.LM.
func (a *Model) Score(ctx context.Context, reqs []eval.Request) ([]eval.Result, error) {
	pairs := make([]llm.Pair, len(reqs))
	for i, r := range reqs {
		pairs[i] = llm.Pair{Context: r.Context, Continuation: r.Continuation}
	}
	scores, err := a.m.Score(ctx, pairs)
	if err != nil {
		return nil, err
	}
	out := make([]eval.Result, len(scores))
	for i, s := range scores {
		out[i] = eval.Result{LogProb: s.LogProb, Greedy: s.Greedy, Tokens: s.Tokens}
	}
	return out, nil
}

// Generate implements eval.LM with greedy decoding.
func (a *Model) Generate(ctx context.Context, prompt string, opts eval.GenOptions) (string, error) {
	return a.m.Generate(ctx, prompt, llm.GenerateOptions{MaxTokens: opts.MaxTokens, Stop: opts.Stop})
}

// CountTokens implements eval.TokenCounter with the model's tokenizer.
func (a *Model) CountTokens(text string) (int, error) {
	ids, err := a.m.Tok.Encode(text)
	return len(ids), err
}

// CountPromptTokens implements eval.PromptCounter: the tokens the engine
// runs for a context or prompt, its beginning-of-sequence token included.
func (a *Model) CountPromptTokens(text string) (int, error) {
	ids, err := a.m.Tok.Encode(text)
	n := len(ids)
	if a.m.Tok.AddBOS() {
		n++
	}
	return n, err
}

// SHA256 is the model file's hash ("" for a model never saved), the cache
// key's model part.
func (a *Model) SHA256() string { return a.m.SHA256() }

// Independent wraps an LM so that every request is scored in a call of its
// own: no context is shared. It exists to measure what sharing saves.
type Independent struct{ eval.LM }

// Score scores the requests one by one.
func (l Independent) Score(ctx context.Context, reqs []eval.Request) ([]eval.Result, error) {
	out := make([]eval.Result, 0, len(reqs))
	for _, r := range reqs {
		res, err := l.LM.Score(ctx, []eval.Request{r})
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}
