package task

import (
	"strings"
	"testing"
)

func TestValidateRejectsBadItems(t *testing.T) {
	cases := []struct {
		kind Kind
		item Item
		want string
	}{
		{MultipleChoice, Item{ID: "a:1", Choices: []string{"x", "y"}, Gold: 2}, "a:1: field gold: index 2 out of range"},
		{MultipleChoice, Item{ID: "a:2", Choices: []string{"x"}}, "need at least 2 choices"},
		{MultipleChoice, Item{ID: "a:3", Choices: []string{"x", ""}}, "choices[1]: empty"},
		{MC2, Item{ID: "t:1", Choices: []string{"x", "y"}, Labels: []int{0, 0}}, "no correct answer"},
		{MC2, Item{ID: "t:2", Choices: []string{"x", "y"}, Labels: []int{1}}, "1 labels for 2 choices"},
		{MC2, Item{ID: "t:3", Choices: []string{"x", "y"}, Labels: []int{1, 2}}, "labels[1]: label 2"},
		{Partial, Item{ID: "w:1", Contexts: []string{"a", "b"}, Suffix: "s", Gold: -1}, "index -1 out of range"},
		{Partial, Item{ID: "w:2", Contexts: []string{"a", "b"}}, "field suffix"},
		{Generate, Item{ID: "g:1", Query: "q"}, "field answer"},
		{Perplexity, Item{ID: "p:1"}, "field text"},
		{Kind("nope"), Item{ID: "k"}, "unknown kind"},
	}
	for _, c := range cases {
		err := c.item.Validate(c.kind)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: err = %v, want it to contain %q", c.kind, c.item, err, c.want)
		}
	}
	good := Item{Choices: []string{"x", "y"}, Labels: []int{1, 0}}
	if err := good.Validate(MC2); err != nil {
		t.Fatal(err)
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Fatalf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	if _, err := ParseKind("mcq"); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
