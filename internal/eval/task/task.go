// Package task is the data model shared by the loaders, the synthetic pack
// and the scorer: what one evaluation item is for each kind of task, and the
// checks that reject an item before it could silently score 0.
package task

import (
	"fmt"
	"strings"
)

// Kind says how an item is scored.
type Kind string

const (
	// MultipleChoice: Query + " " + Choices[j] scored by log-likelihood;
	// acc and acc_norm (per-character normalised) as lm-eval computes them.
	MultipleChoice Kind = "multiple_choice"
	// MC2: TruthfulQA mc2, normalised probability mass on the true choices.
	MC2 Kind = "mc2"
	// Partial: Winogrande-style partial scoring, Contexts[j] + " " + Suffix,
	// only the shared suffix is scored.
	Partial Kind = "partial"
	// Generate: greedy generation until a stop string, answer extraction and
	// exact match against Answer.
	Generate Kind = "generate"
	// Perplexity: held-out loss of Text.
	Perplexity Kind = "perplexity"
)

// Kinds lists every kind, for error messages and validation.
var Kinds = []Kind{MultipleChoice, MC2, Partial, Generate, Perplexity}

// ParseKind checks a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown task kind %q (want one of %v)", s, Kinds)
}

// Item is one evaluation document after its benchmark's own formatting has
// been applied. Only the fields of its kind are set.
type Item struct {
	// ID names the item in errors (source file:line or a synthetic key).
	ID string `json:"id,omitempty"`
	// Group restricts few-shot examples to the same group (MMLU subject).
	Group string `json:"group,omitempty"`
	// Description is printed once before the few-shot examples.
	Description string `json:"description,omitempty"`

	// Query is the prompt (MultipleChoice, MC2, Generate).
	Query string `json:"query,omitempty"`
	// Choices are the answer texts without the leading delimiter
	// (MultipleChoice, MC2).
	Choices []string `json:"choices,omitempty"`
	// Gold is the index of the correct choice or context
	// (MultipleChoice, Partial).
	Gold int `json:"gold"`
	// Labels marks each choice true (1) or false (0) (MC2).
	Labels []int `json:"labels,omitempty"`
	// Contexts are the prompt with each option substituted (Partial).
	Contexts []string `json:"contexts,omitempty"`
	// Suffix is the text shared by every option (Partial).
	Suffix string `json:"suffix,omitempty"`
	// Answer is the reference answer as the dataset writes it; few-shot
	// examples show it whole and exact match compares it after
	// normalisation (Generate).
	Answer string `json:"answer,omitempty"`
	// Text is the text whose loss is measured (Perplexity).
	Text string `json:"text,omitempty"`
}

// Validate rejects an item that cannot be scored as kind k. The error names
// the item and the field at fault.
func (it *Item) Validate(k Kind) error {
	if err := it.Check(k); err != nil {
		return fmt.Errorf("item %s: %w", it.name(), err)
	}
	return nil
}

// Check is Validate without the item's name, for callers (the loaders) that
// already prefix errors with file and line.
func (it *Item) Check(k Kind) error {
	fail := fmt.Errorf
	switch k {
	case MultipleChoice:
		if len(it.Choices) < 2 {
			return fail("field choices: need at least 2 choices, got %d", len(it.Choices))
		}
		if it.Gold < 0 || it.Gold >= len(it.Choices) {
			return fail("field gold: index %d out of range for %d choices", it.Gold, len(it.Choices))
		}
		for j, c := range it.Choices {
			if c == "" {
				return fail("field choices[%d]: empty choice", j)
			}
		}
	case MC2:
		if len(it.Choices) < 2 {
			return fail("field choices: need at least 2 choices, got %d", len(it.Choices))
		}
		if len(it.Labels) != len(it.Choices) {
			return fail("field labels: %d labels for %d choices", len(it.Labels), len(it.Choices))
		}
		trues := 0
		for j, l := range it.Labels {
			if l != 0 && l != 1 {
				return fail("field labels[%d]: label %d is neither 0 nor 1", j, l)
			}
			trues += l
		}
		if trues == 0 {
			return fail("field labels: no choice is marked true (no correct answer)")
		}
		if trues == len(it.Labels) {
			return fail("field labels: every choice is marked true (no false answer to compare)")
		}
		for j, c := range it.Choices {
			if c == "" {
				return fail("field choices[%d]: empty choice", j)
			}
		}
	case Partial:
		if len(it.Contexts) < 2 {
			return fail("field contexts: need at least 2 options, got %d", len(it.Contexts))
		}
		if it.Gold < 0 || it.Gold >= len(it.Contexts) {
			return fail("field gold: index %d out of range for %d options", it.Gold, len(it.Contexts))
		}
		if it.Suffix == "" {
			return fail("field suffix: empty (nothing to score after the option)")
		}
	case Generate:
		if strings.TrimSpace(it.Answer) == "" {
			return fail("field answer: empty reference answer")
		}
		if it.Query == "" {
			return fail("field query: empty prompt")
		}
	case Perplexity:
		if it.Text == "" {
			return fail("field text: empty text")
		}
	default:
		return fail("unknown kind %q", k)
	}
	return nil
}

func (it *Item) name() string {
	if it.ID != "" {
		return it.ID
	}
	return "(no id)"
}

// ValidateAll validates every item, returning the first error.
func ValidateAll(k Kind, items []Item) error {
	for i := range items {
		if err := items[i].Validate(k); err != nil {
			return err
		}
	}
	return nil
}
