// Package eval scores language models on benchmark tasks the way
// lm-evaluation-harness does (multiple choice with acc / acc_norm,
// TruthfulQA mc2, Winogrande partial scoring, generation with answer
// extraction and exact match, held-out loss) and folds the per-task scores
// into one fitness number. Items come from native benchmark files
// (package bench) or the synthetic pack (package synth). Scores are cached
// by model hash so a surviving model is not scored twice.
//
// The model is reached only through the small LM interface, so every test
// runs against a fake whose log-probabilities the test chooses; the adapter
// to the engine lives in the engine sub-package.
package eval

import "context"

// Request asks for the log-likelihood of Continuation after Context. An
// empty Context means "after the beginning-of-sequence token".
type Request struct {
	Context      string
	Continuation string
}

// Result is the answer to one Request.
type Result struct {
	// LogProb is the sum of the log-probabilities (natural log) of the
	// continuation's tokens.
	LogProb float64
	// Greedy is true when every continuation token was the argmax.
	Greedy bool
	// Tokens is the number of continuation tokens scored.
	Tokens int
}

// GenOptions controls greedy generation.
type GenOptions struct {
	MaxTokens int
	// Stop ends generation at the first occurrence of any of these strings;
	// the returned text excludes it.
	Stop []string
}

// LM is what evaluation needs from a model.
type LM interface {
	// Score returns one Result per Request, in order. Requests sharing a
	// Context are passed adjacently so an engine can compute it once.
	Score(ctx context.Context, reqs []Request) ([]Result, error)
	// Generate returns the greedy continuation of prompt.
	Generate(ctx context.Context, prompt string, opts GenOptions) (string, error)
}
