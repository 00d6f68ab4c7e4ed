package train

import (
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/llm"
)

// A segmented example learns exactly the tokens of its learned segments,
// adds no BOS/EOS of its own, and is refused whole when it does not fit.
func TestSegmentsLearnOnlyMarkedTokens(t *testing.T) {
	tok := llm.ByteTokenizer{}
	ex := Example{Segments: []Segment{{Text: "U:ab"}, {Text: "cd", Learn: true}, {Text: "U:e"}, {Text: "f", Learn: true}}}
	seqs, err := tokenize(tok, []Example{ex}, 64)
	if err != nil {
		t.Fatal(err)
	}
	s := seqs[0]
	// Tokens: U : a b c d U : e f (10); targets are tokens 1..9.
	want := "0000110001"[1:] // learn flags of targets
	var got strings.Builder
	for _, l := range s.learn {
		if l {
			got.WriteByte('1')
		} else {
			got.WriteByte('0')
		}
	}
	if got.String() != want || len(s.input) != 9 {
		t.Fatalf("learn %s, want %s (inputs %d)", got.String(), want, len(s.input))
	}
	if _, err := tokenize(tok, []Example{ex}, 5); err == nil || !strings.Contains(err.Error(), "more than the context of 5") {
		t.Fatalf("too long: %v", err)
	}
	if _, err := tokenize(tok, []Example{{Segments: []Segment{{Text: "abc"}}}}, 64); err == nil || !strings.Contains(err.Error(), "no learned token") {
		t.Fatalf("nothing learned: %v", err)
	}
}
