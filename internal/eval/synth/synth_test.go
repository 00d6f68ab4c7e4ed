package synth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/eval/task"
)

func TestDeterministic(t *testing.T) {
	for _, fam := range Families() {
		a, err := Generate(fam, Validation, 50, 7)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Generate(fam, Validation, 50, 7)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: same seed gave different items", fam)
		}
		c, _ := Generate(fam, Validation, 50, 8)
		if reflect.DeepEqual(a, c) {
			t.Fatalf("%s: seed ignored", fam)
		}
	}
}

func TestSplitsDisjointAndValid(t *testing.T) {
	for _, fam := range Families() {
		kind, _ := Kind(fam)
		owner := map[string]Split{}
		for _, s := range []Split{Train, Validation, Test} {
			for seed := uint64(1); seed <= 3; seed++ {
				items, err := Generate(fam, s, 60, seed)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range items {
					if prev, ok := owner[it.Query]; ok && prev != s {
						t.Fatalf("%s: prompt %q in both %s and %s", fam, it.Query, prev, s)
					}
					owner[it.Query] = s
					if err := it.Validate(kind); err != nil {
						t.Fatal(err)
					}
					if prefixRelated(it.Choices) {
						t.Fatalf("%s: a choice is a prefix of another: %q", fam, it.Choices)
					}
					if kind == task.MultipleChoice && len(it.Choices) < 3 {
						t.Fatalf("%s: only %d choices: %q", fam, len(it.Choices), it.Choices)
					}
					if len(it.Query) >= 40 {
						t.Fatalf("%s: prompt of %d bytes: %q", fam, len(it.Query), it.Query)
					}
				}
			}
		}
	}
}

func TestItemsAreCorrect(t *testing.T) {
	items, _ := Generate("addition", Test, 20, 1)
	for _, it := range items {
		var a, b, sum int
		if _, err := fmt.Sscanf(it.Query, "Q: %d+%d\nA:", &a, &b); err != nil {
			t.Fatal(err)
		}
		final := it.Answer[strings.Index(it.Answer, "#### "):]
		if _, err := fmt.Sscanf(final, "#### %d", &sum); err != nil || sum != a+b {
			t.Fatalf("%q -> %q", it.Query, it.Answer)
		}
		var u1, u2, us, t1, t2, ts int
		steps := strings.Fields(it.Answer[:len(it.Answer)-len(final)])
		if len(steps) != 2 {
			t.Fatalf("%q: working %q", it.Query, it.Answer)
		}
		carry := strings.Count(steps[1], "+") == 2
		tensStep := steps[1]
		if carry {
			tensStep = strings.Replace(tensStep, "+1=", "=", 1)
		}
		if _, err := fmt.Sscanf(steps[0]+" "+tensStep, "%d+%d=%d %d+%d=%d", &u1, &u2, &us, &t1, &t2, &ts); err != nil ||
			carry != (us >= 10) ||
			u1 != a%10 || u2 != b%10 || us != u1+u2 || t1 != a/10 || t2 != b/10 || ts != t1+t2+us/10 {
			t.Fatalf("%q: working %q", it.Query, it.Answer)
		}
		if len(it.Query)+len(" "+it.Answer+"\n") > 40 {
			t.Fatalf("%q: example longer than 40 bytes", it.Query)
		}
	}
	items, _ = Generate("reversal", Test, 20, 1)
	for _, it := range items {
		w := strings.TrimSuffix(strings.TrimPrefix(it.Query, "Reverse: "), "\nA:")
		got := it.Choices[it.Gold]
		for i := range w {
			if got[i] != w[len(w)-1-i] {
				t.Fatalf("%q -> %q", w, got)
			}
		}
		if len(it.Choices) < 3 {
			t.Fatalf("only %d choices: %v", len(it.Choices), it.Choices)
		}
	}
	items, _ = Generate("sequence", Test, 50, 1)
	for _, it := range items {
		f := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(it.Query, "Next: "), "\nA:"))
		// The pattern repeats: the answer is the letter one period back.
		period := 0
		for p := 2; p <= 4 && period == 0; p++ {
			ok := true
			for i := p; i < len(f); i++ {
				ok = ok && f[i] == f[i-p]
			}
			if ok {
				period = p
			}
		}
		if period == 0 || it.Choices[it.Gold] != f[len(f)-period] || len(it.Choices) != 4 {
			t.Fatalf("%q: gold %q of %q", it.Query, it.Choices[it.Gold], it.Choices)
		}
	}
	items, _ = Generate("comparison", Test, 20, 1)
	golds := map[int]bool{}
	for _, it := range items {
		golds[it.Gold] = true
		for _, c := range it.Choices {
			if len(c) > len(it.Choices[it.Gold]) || (len(c) == len(it.Choices[it.Gold]) && c > it.Choices[it.Gold]) {
				t.Fatalf("%q: gold %q is not the largest", it.Query, it.Choices[it.Gold])
			}
		}
	}
	if len(golds) < 2 {
		t.Fatal("gold position never varies")
	}
}

func TestSmallSplitExhaustionIsAnError(t *testing.T) {
	// addition has 100 x 100 = 10,000 prompts, about 1,000 in test.
	if _, err := Generate("addition", Test, 2000, 1); err == nil || !strings.Contains(err.Error(), "fewer than 2000 distinct items") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Generate("nope", Test, 5, 1); err == nil {
		t.Fatal("unknown family accepted")
	}
	if _, err := Generate("addition", Split("eval"), 5, 1); err == nil {
		t.Fatal("unknown split accepted")
	}
	dev, err := Generate("addition", Split("dev"), 5, 1)
	val, _ := Generate("addition", Validation, 5, 1)
	if err != nil || !reflect.DeepEqual(dev, val) {
		t.Fatalf("dev is not validation: %v", err)
	}
}

func TestTrainJSONL(t *testing.T) {
	var buf bytes.Buffer
	if err := TrainJSONL("comparison", 30, 3, &buf); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		var ex struct{ Prompt, Completion string }
		if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
			t.Fatal(err)
		}
		if SplitOf("comparison", ex.Prompt) != Train || !strings.HasPrefix(ex.Completion, " ") || !strings.HasSuffix(ex.Completion, "\n") {
			t.Fatalf("bad example %+v", ex)
		}
		if len(ex.Prompt)+len(ex.Completion) > 64 {
			t.Fatalf("example longer than a 64-byte context: %+v", ex)
		}
		n++
	}
	if n != 30 {
		t.Fatalf("%d lines", n)
	}
	if _, _, err := Example(task.Item{}, task.Perplexity); err == nil {
		t.Fatal("perplexity example accepted")
	}
}
