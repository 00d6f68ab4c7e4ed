package eval

import (
	"strings"
	"testing"
)

func gsm8kExtractor(t *testing.T) *extractor {
	t.Helper()
	e, err := compileExtractor("gsm8k", GSM8KStrictRegex, GSM8KFlexibleRegex, GSM8KIgnoreRegexes, true)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestGSM8KExtraction(t *testing.T) {
	e := gsm8kExtractor(t)
	ref := "She pays 2 * $600 = $<<2*600=1200>>1,200.\n#### 1,200"
	cases := []struct {
		out              string
		strict, flex     string
		strictOK, flexOK bool
	}{
		{" She pays $1,200.\n#### 1,200", "1,200", "1,200", true, true},
		{" #### 1200", "1200", "1200", true, true},
		{" The answer is $1,200.", invalidAnswer, "$1,200.", false, true},
		{" #### 1,200.5 then 7 more", "1,200.5", "7", false, false},
		{" 3 apples and 1200 pears", invalidAnswer, "1200", false, true},
		{" ####1200", invalidAnswer, "1200", false, true},
		{" #### -5", "-5", "-5", false, false},
		{" nothing", invalidAnswer, invalidAnswer, false, false},
	}
	for _, c := range cases {
		s, f := e.strictAnswer(c.out), e.flexibleAnswer(c.out)
		if s != c.strict || f != c.flex {
			t.Errorf("%q: strict %q flex %q, want %q %q", c.out, s, f, c.strict, c.flex)
		}
		if e.match(s, ref) != c.strictOK || e.match(f, ref) != c.flexOK {
			t.Errorf("%q: strict ok %v flex ok %v, want %v %v", c.out, e.match(s, ref), e.match(f, ref), c.strictOK, c.flexOK)
		}
	}
	if e.match(" -5", "#### -5") {
		t.Error("untrimmed prediction matched (lm-eval does not strip the reference side either)")
	}
	if !e.match("-5", "#### -5") {
		t.Error("negative answer did not match")
	}
}

func TestExtractorNoRegexComparesTrimmedText(t *testing.T) {
	e, err := compileExtractor("t", "", "", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.strictAnswer("  Paris \n"); got != "Paris" || !e.match(got, "Paris") || e.match(got, "paris") {
		t.Fatalf("got %q", got)
	}
	if e.flexibleAnswer("x") != "" {
		t.Fatal("flexible answer without a flexible regex")
	}
}

func TestBadRegexNamesField(t *testing.T) {
	for _, c := range []struct {
		strict, flex string
		ignore       []string
		want         string
	}{
		{"#### ([0-9]+", "", nil, "task t: field answer_regex"},
		{"", "(?P<x", nil, "task t: field flexible_regex"},
		{"", "", []string{"ok", "[z-a]"}, "task t: field ignore_regexes[1]"},
	} {
		_, err := compileExtractor("t", c.strict, c.flex, c.ignore, false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}
