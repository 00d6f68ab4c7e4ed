package eval

import (
	"fmt"
	"regexp"
	"strings"
)

// Answer extraction and exact match as lm-eval's GSM8K task does it.
const (
	// GSM8KStrictRegex takes the number after "#### ".
	GSM8KStrictRegex = `#### (\-?[0-9\.\,]+)`
	// GSM8KFlexibleRegex takes the last number-like run in the output.
	GSM8KFlexibleRegex = `(-?[$0-9.,]{2,})|(-?[0-9]+)`
	// invalidAnswer is what a filter yields when its regex finds nothing.
	invalidAnswer = "[invalid]"
)

// GSM8KIgnoreRegexes are removed from prediction and reference before exact
// match: thousands separators, dollar signs, the worked solution before
// "#### " and a final full stop.
var GSM8KIgnoreRegexes = []string{",", `\$`, `(?s).*#### `, `\.$`}

// extractor turns generated text into an answer and compares it with the
// reference.
type extractor struct {
	strict   *regexp.Regexp // nil: the whole trimmed output is the answer
	flexible *regexp.Regexp // nil: no flexible metric
	ignore   []*regexp.Regexp
	fold     bool
}

func compileExtractor(task, strict, flexible string, ignore []string, ignoreCase bool) (*extractor, error) {
	var e extractor
	var err error
	if strict != "" {
		if e.strict, err = regexp.Compile(strict); err != nil {
			return nil, fmt.Errorf("task %s: field answer_regex: %w", task, err)
		}
	}
	if flexible != "" {
		if e.flexible, err = regexp.Compile(flexible); err != nil {
			return nil, fmt.Errorf("task %s: field flexible_regex: %w", task, err)
		}
	}
	for i, s := range ignore {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("task %s: field ignore_regexes[%d]: %w", task, i, err)
		}
		e.ignore = append(e.ignore, re)
	}
	e.fold = ignoreCase
	return &e, nil
}

// pick applies a regex the way lm-eval's regex filter does: all matches,
// the first (or last) one, the first non-empty group of it, trimmed.
func pick(re *regexp.Regexp, s string, last bool) string {
	ms := re.FindAllStringSubmatch(s, -1)
	if len(ms) == 0 {
		return invalidAnswer
	}
	m := ms[0]
	if last {
		m = ms[len(ms)-1]
	}
	if len(m) == 1 {
		return strings.TrimSpace(m[0])
	}
	for _, g := range m[1:] {
		if g != "" {
			return strings.TrimSpace(g)
		}
	}
	return invalidAnswer
}

// strictAnswer is the strict filter's answer.
func (e *extractor) strictAnswer(out string) string {
	if e.strict == nil {
		return strings.TrimSpace(out)
	}
	return pick(e.strict, out, false)
}

// flexibleAnswer is the flexible filter's answer ("" when there is none).
func (e *extractor) flexibleAnswer(out string) string {
	if e.flexible == nil {
		return ""
	}
	return pick(e.flexible, out, true)
}

func (e *extractor) normalize(s string) string {
	for _, re := range e.ignore {
		s = re.ReplaceAllString(s, "")
	}
	if e.fold {
		s = strings.ToLower(s)
	}
	return s
}

// match is lm-eval's exact_match with regexes_to_ignore and ignore_case.
func (e *extractor) match(pred, ref string) bool {
	return e.normalize(pred) == e.normalize(ref)
}
