package tokenizer

import (
	"fmt"
	"strings"

	"github.com/dlclark/regexp2"
)

// A splitter cuts one piece of text (code points) into consecutive pieces and appends their lengths.
// Pieces are only ever cut, never merged or reordered, so a chain of splitters refines the split.
type splitter func(cpts []rune, lens []int) []int

// preTokenizer is the chain of splitters one tokenizer.ggml.pre value names, applied in order as llama.cpp's
// unicode_regex_split applies its list of expressions: each one cuts every piece the previous ones left.
type preTokenizer struct {
	steps []splitter
}

// The split rules per pre-tokenizer type (llama.cpp's llm_tokenizer_bpe). gpt2 and llama3 are llama.cpp's
// hand-written matchers (so are ours); every other expression runs on a regex engine with ECMAScript
// semantics, as llama.cpp runs std::regex.
const (
	reGPT2            = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	reLlama3          = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reQwen2           = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reBloom           = " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"
	reTekken          = `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reDeepseekLetters = "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943]+"
	reDeepseekPunct   = "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+"
	reCJK             = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"
)

// `\s+$` is written `\s+(?![\s\S])`: the engine's $ also matches before a final newline, std::regex's does not.

// preRules maps each tokenizer.ggml.pre value llama.cpp knows to its expressions, and the flags it sets.
type preRule struct {
	exprs        []string
	ignoreMerges bool // a piece that is a whole token is taken as is (llama3, tekken)
	addBOS       bool // default for tokenizer.ggml.add_bos_token
	noBOS        bool // the pre type clears the BOS id (chatglm-bpe)
}

var (
	ruleDefault   = preRule{exprs: []string{`[\p{P}\$\+<=>\^~\|]+`, reGPT2, `\p{N}+`, `[0-9][0-9][0-9]`}}
	ruleLlama3    = preRule{exprs: []string{reLlama3}, ignoreMerges: true, addBOS: true}
	ruleGPT2      = preRule{exprs: []string{reGPT2}}
	ruleStarcoder = preRule{exprs: []string{`\p{N}`, reGPT2}}
	ruleQwen2     = preRule{exprs: []string{reQwen2}}
	ruleBloom     = preRule{exprs: []string{reBloom}}
)

var preRules = map[string]preRule{
	"default":      ruleDefault,
	"llama3":       ruleLlama3,
	"llama-v3":     ruleLlama3,
	"llama-bpe":    ruleLlama3,
	"falcon3":      ruleLlama3,
	"dbrx":         {exprs: []string{reLlama3}},
	"smaug-bpe":    {exprs: []string{reLlama3}},
	"deepseek-llm": {exprs: []string{`[\r\n]`, reDeepseekLetters, reDeepseekPunct, `\s+(?![\s\S])`, reCJK, `\p{N}+`}},
	"deepseek-v3": {exprs: []string{`\p{N}{1,3}`, "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
		`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_` + "`" + `{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`}},
	"deepseek-coder":   {exprs: []string{`[\r\n]`, `\s?\p{L}+`, `\s?\p{P}+`, reCJK, `\p{N}`}},
	"falcon":           {exprs: []string{`[\p{P}\$\+<=>\^~\|` + "`" + `]+`, reGPT2, `[0-9][0-9][0-9]`}},
	"starcoder":        ruleStarcoder,
	"refact":           ruleStarcoder,
	"command-r":        ruleStarcoder,
	"smollm":           ruleStarcoder,
	"codeshell":        ruleStarcoder,
	"exaone":           ruleStarcoder,
	"minerva-7b":       ruleStarcoder,
	"gpt-2":            ruleGPT2,
	"phi-2":            ruleGPT2,
	"jina-es":          ruleGPT2,
	"jina-de":          ruleGPT2,
	"gigachat":         ruleGPT2,
	"jina-v1-en":       ruleGPT2,
	"jina-v2-es":       ruleGPT2,
	"jina-v2-de":       ruleGPT2,
	"jina-v2-code":     ruleGPT2,
	"roberta-bpe":      ruleGPT2,
	"mpt":              ruleGPT2,
	"olmo":             ruleGPT2,
	"jais":             ruleGPT2,
	"qwen2":            ruleQwen2,
	"deepseek-r1-qwen": ruleQwen2,
	"stablelm2":        ruleQwen2,
	"megrez":           ruleQwen2,
	"poro-chat":        ruleBloom,
	"bloom":            ruleBloom,
	"gpt3-finnish":     ruleBloom,
	"chatglm-bpe":      {exprs: []string{reLlama3}, noBOS: true},
	"viking":           {exprs: []string{reBloom, `\p{N}`}},
	"tekken":           {exprs: []string{reTekken}, ignoreMerges: true, addBOS: true},
	"chameleon": {exprs: []string{`<sentinel:[0-9]+>`, `(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z`, `([\t\n]|    |  )`, `\p{N}`,
		`[\p{P}!-/:-@\[-` + "`" + `{-~]`, reGPT2}, addBOS: true},
}

// newPreTokenizer builds the splitter chain for a rule.
func newPreTokenizer(r preRule) (*preTokenizer, error) {
	p := &preTokenizer{}
	for _, e := range r.exprs {
		switch e {
		case reGPT2:
			p.steps = append(p.steps, splitGPT2)
		case reLlama3:
			p.steps = append(p.steps, splitLlama3)
		default:
			s, err := regexSplitter(e)
			if err != nil {
				return nil, err
			}
			p.steps = append(p.steps, s)
		}
	}
	return p, nil
}

// split cuts cpts into pieces and returns their lengths (in code points).
func (p *preTokenizer) split(cpts []rune) []int {
	lens := []int{len(cpts)}
	if len(cpts) == 0 {
		return nil
	}
	var next []int
	for _, step := range p.steps {
		next = next[:0]
		start := 0
		for _, n := range lens {
			next = step(cpts[start:start+n], next)
			start += n
		}
		lens, next = next, lens
	}
	return lens
}

// Collapsed text (llama.cpp's trick for std::regex, which has no Unicode classes): ASCII stays itself, any
// other code point becomes one stand-in per category, and \p{X} in an expression becomes a class of that
// stand-in plus the ASCII members llama.cpp lists. The result differs from true Unicode classes (ASCII '~'
// is in no \p{S}, and every non-ASCII letter is both upper and lower case), and llama.cpp's answers are
// what we must reproduce.
const (
	collapsedNumber = 0xD1
	collapsedLetter = 0xD2
	collapsedPunct  = 0xD3
	collapsedMark   = 0xD4
	collapsedSymbol = 0xD5
	collapsedOther  = 0xD0
	collapsedSpace  = 0x0B
)

var collapsedClass = map[string]string{
	`\p{N}`: string(rune(collapsedNumber)) + `0-9`,
	`\p{L}`: string(rune(collapsedLetter)) + `A-Za-z`,
	`\p{P}`: string(rune(collapsedPunct)) + `!-#%-*,-/:-;?-@\[-\]_\{\}`,
	`\p{M}`: string(rune(collapsedMark)),
	`\p{S}`: string(rune(collapsedSymbol)) + `\$\+<->\^` + "`" + `\|`,
}

func collapse(r rune) rune {
	if r < 128 {
		return r
	}
	f := flagsOf(r)
	if isSpace(f) {
		return collapsedSpace
	}
	switch f & catMask {
	case catNumber:
		return collapsedNumber
	case catLetter:
		return collapsedLetter
	case catPunct:
		return collapsedPunct
	case catMark:
		return collapsedMark
	case catSymbol:
		return collapsedSymbol
	}
	return collapsedOther
}

// rewriteCollapsed turns \p{X} into collapsed classes (inside a [...] without extra brackets).
func rewriteCollapsed(expr string) string {
	var b strings.Builder
	inside := false
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c == '[' && (i == 0 || expr[i-1] != '\\') {
			b.WriteByte('[')
			inside = true
			continue
		}
		if inside && c == ']' && expr[i-1] != '\\' {
			b.WriteByte(']')
			inside = false
			continue
		}
		if c == '\\' && i+4 < len(expr) && expr[i+1] == 'p' && expr[i+2] == '{' && expr[i+4] == '}' {
			if cls, ok := collapsedClass[expr[i:i+5]]; ok {
				if !inside {
					b.WriteByte('[')
				}
				b.WriteString(cls)
				if !inside {
					b.WriteByte(']')
				}
				i += 4
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func usesCategories(expr string) bool {
	for k := range collapsedClass {
		if strings.Contains(expr, k) {
			return true
		}
	}
	return false
}

// regexSplitter compiles expr as llama.cpp runs it: on collapsed text when it names a Unicode category, else
// on the code points with non-ASCII whitespace shown as a vertical tab (std::regex's \s is ASCII only).
// Text between matches becomes pieces of its own.
func regexSplitter(expr string) (splitter, error) {
	collapsed := usesCategories(expr)
	if collapsed {
		expr = rewriteCollapsed(expr)
	}
	re, err := regexp2.Compile(expr, regexp2.ECMAScript)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: pre-tokenizer expression %q: %w", expr, err)
	}
	return func(cpts []rune, lens []int) []int {
		view := make([]rune, len(cpts))
		for i, r := range cpts {
			switch {
			case collapsed:
				view[i] = collapse(r)
			case r > 0x7f && isSpace(flagsOf(r)):
				view[i] = collapsedSpace
			default:
				view[i] = r
			}
		}
		at := 0
		m, err := re.FindRunesMatch(view)
		for err == nil && m != nil {
			if m.Index > at {
				lens = append(lens, m.Index-at)
			}
			if m.Length > 0 {
				lens = append(lens, m.Length)
			}
			at = m.Index + m.Length
			m, err = re.FindNextMatch(m)
		}
		if at < len(cpts) {
			lens = append(lens, len(cpts)-at)
		}
		return lens
	}, nil
}

// splitGPT2 is GPT-2's expression reGPT2 written out, as llama.cpp's unicode_regex_split_custom_gpt2 does.
func splitGPT2(c []rune, lens []int) []int {
	n := len(c)
	sp := &pieceSplitter{c: c, lens: lens}
	flags, add := sp.flags, sp.add
	letter, number, other, space := pieceLetter, pieceNumber, pieceOther, pieceSpace
	for pos := 0; pos < n; {
		r := c[pos]
		if r == '\'' && pos+1 < n {
			r1 := c[pos+1]
			if r1 == 's' || r1 == 't' || r1 == 'm' || r1 == 'd' {
				pos += add(pos + 2)
				continue
			}
			if pos+2 < n {
				r2 := c[pos+2]
				if r1 == 'r' && r2 == 'e' || r1 == 'v' && r2 == 'e' || r1 == 'l' && r2 == 'l' {
					pos += add(pos + 3)
					continue
				}
			}
		}
		f2 := flags(pos)
		if r == ' ' {
			f2 = flags(pos + 1)
		}
		if letter(f2) || number(f2) || other(f2) {
			class := letter
			if number(f2) {
				class = number
			} else if other(f2) {
				class = other
			}
			if r == ' ' {
				pos++
			}
			for class(f2) {
				pos++
				f2 = flags(pos)
			}
			add(pos)
			continue
		}
		ws := 0
		for space(flags(pos + ws)) {
			ws++
		}
		pos = whitespaceRunEnd(pos, ws, n)
		add(pos)
	}
	return sp.lens
}

// splitLlama3 is the Llama 3 expression reLlama3 written out, as llama.cpp's
// unicode_regex_split_custom_llama3 does.
func splitLlama3(c []rune, lens []int) []int {
	n := len(c)
	sp := &pieceSplitter{c: c, lens: lens}
	flags, add := sp.flags, sp.add
	letter, number, other, space := pieceLetter, pieceNumber, pieceOther, pieceSpace
	lower := func(i int) rune {
		r := c[i]
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	for pos := 0; pos < n; {
		r := c[pos]
		f := flags(pos)
		if r == '\'' && pos+1 < n {
			r1 := lower(pos + 1)
			if r1 == 's' || r1 == 't' || r1 == 'm' || r1 == 'd' {
				pos += add(pos + 2)
				continue
			}
			if pos+2 < n {
				r2 := lower(pos + 2)
				if r1 == 'r' && r2 == 'e' || r1 == 'v' && r2 == 'e' || r1 == 'l' && r2 == 'l' {
					pos += add(pos + 3)
					continue
				}
			}
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !(r == '\r' || r == '\n' || number(f)) {
			if letter(f) || letter(flags(pos+1)) {
				pos++
				for letter(flags(pos)) {
					pos++
				}
				add(pos)
				continue
			}
		}
		// \p{N}{1,3}
		if number(f) {
			ini := pos
			for number(flags(pos)) {
				pos++
				if pos-ini >= 3 {
					add(pos)
					ini = pos
				}
			}
			add(pos)
			continue
		}
		// <space>?[^\s\p{L}\p{N}]+[\r\n]*
		f2 := f
		if r == ' ' {
			f2 = flags(pos + 1)
		}
		if other(f2) {
			if r == ' ' {
				pos++
			}
			for other(f2) {
				pos++
				f2 = flags(pos)
			}
			for pos < n && (c[pos] == '\r' || c[pos] == '\n') {
				pos++
			}
			add(pos)
			continue
		}
		ws, lastNL := 0, 0
		for space(flags(pos + ws)) {
			if c[pos+ws] == '\r' || c[pos+ws] == '\n' {
				lastNL = pos + ws + 1
			}
			ws++
		}
		if lastNL > 0 { // \s*[\r\n]+
			pos = lastNL
			add(pos)
			continue
		}
		pos = whitespaceRunEnd(pos, ws, n)
		add(pos)
	}
	return sp.lens
}

// whitespaceRunEnd is where the piece starting at pos ends when the splitters' earlier
// alternatives did not match and ws white-space code points start there: \s+(?!\S)
// leaves the last space of a run to the word after it, \s+ takes a run that ends
// the text, and anything else is a piece of one code point.
func whitespaceRunEnd(pos, ws, n int) int {
	switch {
	case ws > 1 && pos+ws < n:
		return pos + ws - 1
	case ws > 0:
		return pos + ws
	default:
		return pos + 1
	}
}

// pieceSplitter is the state the hand-written splitters share: the code points of one piece of text and the
// lengths of the pieces cut so far.
type pieceSplitter struct {
	c    []rune
	lens []int
	prev int // where the next piece starts
}

// flags are the Unicode class flags of code point i, or 0xff past the end of the text.
func (s *pieceSplitter) flags(i int) uint8 {
	if i < len(s.c) {
		return flagsOf(s.c[i])
	}
	return 0xff
}

// add cuts a piece ending at end (nothing if it would be empty) and returns its length.
func (s *pieceSplitter) add(end int) int {
	l := end - s.prev
	if l > 0 {
		s.lens = append(s.lens, l)
	}
	s.prev = end
	return l
}

func pieceLetter(f uint8) bool { return f != 0xff && isLetter(f) }
func pieceNumber(f uint8) bool { return f != 0xff && isNumber(f) }
func pieceSpace(f uint8) bool  { return f != 0xff && isSpace(f) }
func pieceOther(f uint8) bool {
	return f != 0xff && !isSpace(f) && !isLetter(f) && !isNumber(f)
}
