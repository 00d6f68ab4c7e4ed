package eval

import (
	"context"
	"fmt"
	"strings"
)

// fakeLM answers from functions the test chooses and records every call.
type fakeLM struct {
	ll    func(context, continuation string) float64
	gen   func(prompt string) string
	calls [][]Request
	gens  []string
	// tokens per continuation; default one per byte, like a byte-level model.
	tokens func(continuation string) int
}

func (f *fakeLM) Score(_ context.Context, reqs []Request) ([]Result, error) {
	f.calls = append(f.calls, append([]Request(nil), reqs...))
	out := make([]Result, len(reqs))
	for i, r := range reqs {
		if f.ll == nil {
			return nil, fmt.Errorf("fake: unexpected Score")
		}
		n := len(r.Continuation)
		if f.tokens != nil {
			n = f.tokens(r.Continuation)
		}
		out[i] = Result{LogProb: f.ll(r.Context, r.Continuation), Tokens: n}
	}
	return out, nil
}

func (f *fakeLM) Generate(_ context.Context, prompt string, _ GenOptions) (string, error) {
	f.gens = append(f.gens, prompt)
	if f.gen == nil {
		return "", fmt.Errorf("fake: unexpected Generate")
	}
	return f.gen(prompt), nil
}

func (f *fakeLM) requests() []Request {
	var all []Request
	for _, c := range f.calls {
		all = append(all, c...)
	}
	return all
}

// table returns an ll function that looks continuations up (keyed by
// continuation, or "context|continuation" when the context matters) and
// panics on an unexpected request, so a wrong prompt cannot pass.
func table(m map[string]float64) func(string, string) float64 {
	return func(ctx, cont string) float64 {
		if v, ok := m[ctx+"|"+cont]; ok {
			return v
		}
		if v, ok := m[cont]; ok {
			return v
		}
		panic(fmt.Sprintf("fake: no log-prob for context %q continuation %q", lastLine(ctx), cont))
	}
}

func lastLine(s string) string {
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return "..." + s[i:]
	}
	return s
}
