package eval

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/evomerge/evomerge/internal/eval/task"
)

// TaskResult is one task's outcome.
type TaskResult struct {
	Name   string    `json:"name"`
	Source string    `json:"source"`
	Kind   task.Kind `json:"kind"`
	// Metric is the primary metric and Score its value: the task's term in
	// the fitness.
	Metric string  `json:"metric"`
	Score  float64 `json:"score"`
	// StdErr is the standard error of Score over items (0 for corpus-level
	// metrics and single items).
	StdErr  float64            `json:"stderr"`
	Weight  float64            `json:"weight"`
	Metrics map[string]float64 `json:"metrics"`
	// N is the number of items scored.
	N int `json:"n"`
	// Tokens is how many tokens the model processed for this task: every
	// context it scored continuations after (the few-shot prompt included,
	// once per Score call however many continuations share it, with the
	// beginning-of-sequence token), every continuation token, and for
	// generation the prompt and the tokens generated (the compute budget of
	// an experiment counts them). Kept in the cache, so a cached result
	// reports the cost of computing it; Counting says how it was counted.
	Tokens   int64  `json:"tokens,omitempty"`
	Counting string `json:"counting,omitempty"`
	Version  string `json:"version"`
	// Cached is true when the result came from the cache (not serialised,
	// so a report's bytes do not depend on cache state).
	Cached bool `json:"-"`
}

// Report is a suite's outcome: the weighted mean of the task scores and the
// per-task results in suite order.
type Report struct {
	Fitness float64      `json:"fitness"`
	Tasks   []TaskResult `json:"tasks"`
}

// Options tune Evaluate.
type Options struct {
	// Cache, with ModelSHA256, lets a model skip tasks it was already
	// scored on. Both are optional.
	Cache       Cache
	ModelSHA256 string
	// MaxBatch bounds the requests per Score call (0: a whole task in one
	// call).
	MaxBatch int
	// Progress, if set, is called after each task.
	Progress func(done, total int, r TaskResult)
}

// Evaluate scores lm on every task of the suite and returns the report.
// A task that cannot be scored (bad file, bad item, model error) fails the
// whole evaluation: a fitness silently missing a term would mislead
// selection.
func Evaluate(ctx context.Context, lm LM, suite Suite, opts Options) (Report, error) {
	if err := suite.Validate(); err != nil {
		return Report{}, err
	}
	if opts.Cache != nil && opts.ModelSHA256 != "" {
		if _, err := modelDir(opts.ModelSHA256); err != nil {
			return Report{}, err
		}
	}
	var rep Report
	for n, raw := range suite.Tasks {
		spec, _ := raw.withDefaults() // checked by Validate
		r, err := evaluateTask(ctx, lm, spec, opts)
		if err != nil {
			return Report{}, err
		}
		rep.Tasks = append(rep.Tasks, r)
		if opts.Progress != nil {
			opts.Progress(n+1, len(suite.Tasks), r)
		}
	}
	rep.Fitness = Fitness(rep.Tasks)
	return rep, nil
}

// Fitness is the weighted mean of the task scores (all weights 1: the
// plain mean the Open LLM Leaderboard reported).
func Fitness(tasks []TaskResult) float64 {
	var sum, wsum float64
	for _, t := range tasks {
		sum += t.Weight * t.Score
		wsum += t.Weight
	}
	if wsum == 0 {
		return 0
	}
	return sum / wsum
}

func evaluateTask(ctx context.Context, lm LM, spec TaskSpec, opts Options) (TaskResult, error) {
	p, err := prepare(spec)
	if err != nil {
		return TaskResult{}, err
	}
	key := CacheKey{Model: opts.ModelSHA256, Task: spec.Name, Version: p.version, N: spec.N, Seed: spec.Seed, Fewshot: spec.Fewshot}
	useCache := opts.Cache != nil && opts.ModelSHA256 != ""
	if useCache {
		r, ok, err := opts.Cache.Get(key)
		if err != nil {
			return TaskResult{}, fmt.Errorf("task %s: %w", spec.Name, err)
		}
		// An entry recorded before prompts were counted (or before token
		// counts existed) is scored again so its cost is the same as a fresh one's.
		if ok && (r.Counting == TokenCounting || r.N == 0) {
			r.Weight, r.Cached = spec.Weight, true
			return r, nil
		}
	}
	r, err := run(ctx, lm, p, opts.MaxBatch)
	if err != nil {
		return TaskResult{}, fmt.Errorf("task %s: %w", spec.Name, err)
	}
	if useCache {
		if err := opts.Cache.Put(key, r); err != nil {
			return TaskResult{}, fmt.Errorf("task %s: %w", spec.Name, err)
		}
	}
	return r, nil
}

// run scores a prepared task and aggregates its metrics.
func run(ctx context.Context, inner LM, p *prepared, maxBatch int) (TaskResult, error) {
	lm := &tokenCounter{LM: inner}
	r, err := runCounted(ctx, lm, p, maxBatch)
	r.Tokens, r.Counting = lm.tokens, TokenCounting
	return r, err
}

func runCounted(ctx context.Context, lm LM, p *prepared, maxBatch int) (TaskResult, error) {
	r := TaskResult{
		Name: p.spec.Name, Source: p.spec.Source, Kind: p.spec.Kind, Metric: p.spec.Metric,
		Weight: p.spec.Weight, N: len(p.items), Version: p.version, Metrics: map[string]float64{},
	}
	if p.spec.Kind == task.Perplexity {
		pp, err := scorePerplexity(ctx, lm, p, maxBatch)
		if err != nil {
			return r, err
		}
		loss := pp.nll / float64(pp.tokens)
		r.Metrics[MetricLoss] = loss
		r.Metrics[MetricTokenProb] = math.Exp(-loss)
		r.Metrics[MetricBitsPerByte] = pp.nll / float64(pp.bytes) / math.Ln2
		if ppl := math.Exp(loss); !math.IsInf(ppl, 0) {
			r.Metrics[MetricPerplexity] = ppl
		}
		r.Score = r.Metrics[p.spec.Metric]
		return r, nil
	}
	var s itemScores
	var err error
	switch p.spec.Kind {
	case task.MultipleChoice:
		s, err = scoreMultipleChoice(ctx, lm, p, maxBatch)
	case task.MC2:
		s, err = scoreMC2(ctx, lm, p, maxBatch)
	case task.Partial:
		s, err = scorePartial(ctx, lm, p, maxBatch)
	case task.Generate:
		s, err = scoreGenerate(ctx, lm, p)
	default:
		err = fmt.Errorf("unknown kind %q", p.spec.Kind)
	}
	if err != nil {
		return r, err
	}
	names := make([]string, 0, len(s))
	for m := range s {
		names = append(names, m)
	}
	sort.Strings(names) // fixed summation order, fixed bytes
	for _, m := range names {
		r.Metrics[m], _ = meanStdErr(s[m])
	}
	r.Score, r.StdErr = meanStdErr(s[p.spec.Metric])
	return r, nil
}

// meanStdErr returns the mean and its standard error (sample standard
// deviation over sqrt(n), as lm-eval reports).
func meanStdErr(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	mean := sum / float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss/float64(len(v)-1)) / math.Sqrt(float64(len(v)))
}

// TokenCounting names how TaskResult.Tokens is counted; a cached result
// counted otherwise is scored again.
const TokenCounting = "prompt+continuation"

// TokenCounter is an optional method of an LM: how many tokens its
// tokenizer makes of text. It counts generated tokens; an LM without it is
// charged one token per byte (a byte-level tokenizer's count).
type TokenCounter interface {
	CountTokens(text string) (int, error)
}

// PromptCounter is an optional method of an LM: how many tokens the model
// runs for a context or prompt (its tokens and the beginning-of-sequence
// token where the model adds one). Without it a prompt costs its
// CountTokens (or its bytes) plus one.
type PromptCounter interface {
	CountPromptTokens(text string) (int, error)
}

// tokenCounter totals the tokens an LM processes: for Score each distinct
// context of a call (the engine computes a shared context once) and the
// continuation tokens it reports; for Generate the prompt and the tokens of
// the text it returns (at least one: a generation that stops at once still
// predicted a token).
type tokenCounter struct {
	LM
	tokens int64
}

func (c *tokenCounter) prompt(text string) (int64, error) {
	if pc, ok := c.LM.(PromptCounter); ok {
		n, err := pc.CountPromptTokens(text)
		return int64(n), err
	}
	n := len(text)
	if tc, ok := c.LM.(TokenCounter); ok {
		var err error
		if n, err = tc.CountTokens(text); err != nil {
			return 0, err
		}
	}
	return int64(n) + 1, nil
}

func (c *tokenCounter) Score(ctx context.Context, reqs []Request) ([]Result, error) {
	res, err := c.LM.Score(ctx, reqs)
	if err != nil {
		return res, err
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		if seen[r.Context] {
			continue
		}
		seen[r.Context] = true
		n, err := c.prompt(r.Context)
		if err != nil {
			return res, err
		}
		c.tokens += n
	}
	for _, r := range res {
		c.tokens += int64(max(r.Tokens, 0))
	}
	return res, nil
}

func (c *tokenCounter) Generate(ctx context.Context, prompt string, opts GenOptions) (string, error) {
	out, err := c.LM.Generate(ctx, prompt, opts)
	if err != nil {
		return out, err
	}
	p, err := c.prompt(prompt)
	if err != nil {
		return out, err
	}
	n := len(out)
	if tc, ok := c.LM.(TokenCounter); ok {
		if n, err = tc.CountTokens(out); err != nil {
			return out, err
		}
	}
	c.tokens += p + int64(max(n, 1))
	return out, nil
}
