package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/eval/task"
)

func load(t *testing.T, format, file string) []task.Item {
	t.Helper()
	f, err := Lookup(format)
	if err != nil {
		t.Fatal(err)
	}
	items, err := f.LoadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func TestARC(t *testing.T) {
	items := load(t, "arc", "arc.jsonl")
	if len(items) != 3 {
		t.Fatalf("%d items, want 3 (blank line skipped)", len(items))
	}
	want := task.Item{
		ID:      "testdata/arc.jsonl:1",
		Query:   "Question: Which gas do plants take in for photosynthesis?\nAnswer:",
		Choices: []string{"oxygen", "carbon dioxide", "nitrogen", "helium"},
		Gold:    1,
	}
	if !reflect.DeepEqual(items[0], want) {
		t.Fatalf("got %+v\nwant %+v", items[0], want)
	}
	if items[1].Gold != 1 || items[2].Gold != 0 {
		t.Fatalf("numeric/letter answer keys: gold %d, %d", items[1].Gold, items[2].Gold)
	}
	if items[2].ID != "testdata/arc.jsonl:4" {
		t.Fatalf("line numbers count blank lines: ID = %s", items[2].ID)
	}
}

func TestHellaSwagCleanup(t *testing.T) {
	items := load(t, "hellaswag", "hellaswag.jsonl")
	if got, want := items[0].Query, "Removing ice from car: Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles. Then"; got != want {
		t.Fatalf("query\n got %q\nwant %q", got, want)
	}
	if items[0].Gold != 3 || items[1].Gold != 1 {
		t.Fatalf("labels (string and int): %d %d", items[0].Gold, items[1].Gold)
	}
	// "[title]" -> ". ", other brackets removed, double spaces collapsed,
	// ctx_b capitalised the Python way (rest lower-cased).
	if got, want := items[1].Query, "Home and Garden: How to grow a plant. Choose a pot. Water it daily"; got != want {
		t.Fatalf("query\n got %q\nwant %q", got, want)
	}
	if got, want := items[1].Choices, []string{" Give it sun.", " Never water it."}; !reflect.DeepEqual(got, want) {
		t.Fatalf("endings %q, want %q", got, want)
	}
}

func TestMMLU(t *testing.T) {
	items := load(t, "mmlu", "mmlu.jsonl")
	it := items[1]
	if want := "Which number is prime?\nA. 4\nB. 6\nC. 7\nD. 9\nAnswer:"; it.Query != want {
		t.Fatalf("query %q, want %q", it.Query, want)
	}
	if !reflect.DeepEqual(it.Choices, []string{"A", "B", "C", "D"}) || it.Gold != 2 {
		t.Fatalf("choices %v gold %d", it.Choices, it.Gold)
	}
	if it.Group != "elementary_mathematics" ||
		it.Description != "The following are multiple choice questions (with answers) about elementary mathematics.\n\n" {
		t.Fatalf("group %q description %q", it.Group, it.Description)
	}
	if items[2].Gold != 0 {
		t.Fatalf("letter answer: gold %d", items[2].Gold)
	}
}

func TestTruthfulQA(t *testing.T) {
	items := load(t, "truthfulqa_mc2", "truthfulqa_mc2.jsonl")
	if items[0].Query != "Q: What happens if you crack your knuckles a lot?\nA:" ||
		!reflect.DeepEqual(items[0].Labels, []int{1, 1, 0, 0}) || len(items[0].Choices) != 4 {
		t.Fatalf("%+v", items[0])
	}
}

func TestWinogrande(t *testing.T) {
	items := load(t, "winogrande", "winogrande.jsonl")
	want := task.Item{
		ID:       "testdata/winogrande.jsonl:1",
		Contexts: []string{"The trophy doesn't fit into the suitcase because the trophy", "The trophy doesn't fit into the suitcase because the suitcase"},
		Suffix:   "is too large.",
		Gold:     0,
	}
	if !reflect.DeepEqual(items[0], want) {
		t.Fatalf("got %+v\nwant %+v", items[0], want)
	}
	if items[1].Gold != 1 {
		t.Fatalf("answer 2 -> gold %d", items[1].Gold)
	}
}

func TestGSM8K(t *testing.T) {
	items := load(t, "gsm8k", "gsm8k.jsonl")
	if items[1].Query != "Question: A book costs $1,200 and a pen costs $5. What do both cost?\nAnswer:" ||
		!strings.HasSuffix(items[1].Answer, "#### 1,205") {
		t.Fatalf("%+v", items[1])
	}
}

func TestBadInputsNameFileAndLine(t *testing.T) {
	cases := []struct{ format, file, want string }{
		{"gsm8k", "malformed.jsonl", "testdata/malformed.jsonl:3:33: malformed JSON"},
		{"arc", "arc_bad_key.jsonl", "arc_bad_key.jsonl:2: field answerKey: \"E\" is not one of choices.label"},
		{"mmlu", "mmlu_bad_gold.jsonl", "mmlu_bad_gold.jsonl:1: field answer: index 4 out of range for 4 choices"},
		{"truthfulqa_mc2", "truthfulqa_no_true.jsonl", "truthfulqa_no_true.jsonl:2: field labels: no choice is marked true"},
		{"winogrande", "winogrande_unlabeled.jsonl", "winogrande_unlabeled.jsonl:1: field answer: missing or empty"},
		{"arc", "does_not_exist.jsonl", "no such file"},
		{"gsm8k", "arc.jsonl", "arc.jsonl:1: field answer: no final"},
	}
	for _, c := range cases {
		f, _ := Lookup(c.format)
		_, err := f.LoadFile(filepath.Join("testdata", c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: err = %v, want %q", c.format, c.file, err, c.want)
		}
	}
	if _, err := Lookup("squad"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestLineLengthBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "long.jsonl")
	long := `{"question":"` + strings.Repeat("x", MaxLineBytes) + `","answer":"#### 1"}`
	if err := os.WriteFile(path, []byte("\n"+long+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := Lookup("gsm8k")
	_, err := f.LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), "long.jsonl:2: line longer than") {
		t.Fatalf("err = %v", err)
	}
}

func TestGeneric(t *testing.T) {
	items, err := LoadGeneric(filepath.Join("testdata", "generic_mc.jsonl"), task.MultipleChoice)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[1].Gold != 1 || items[1].ID != "testdata/generic_mc.jsonl:2 (q2)" {
		t.Fatalf("%+v", items)
	}
	_, err = LoadGeneric(filepath.Join("testdata", "generic_mc_typo.jsonl"), task.MultipleChoice)
	if err == nil || !strings.Contains(err.Error(), `generic_mc_typo.jsonl:2: malformed JSON: json: unknown field "choice"`) {
		t.Fatalf("typo: err = %v", err)
	}
	_, err = LoadGeneric(filepath.Join("testdata", "generic_mc_nogold.jsonl"), task.MultipleChoice)
	if err == nil || !strings.Contains(err.Error(), "generic_mc_nogold.jsonl:1: field gold: missing") {
		t.Fatalf("no gold: err = %v", err)
	}
	if _, err := LoadGeneric(filepath.Join("testdata", "generic_mc.jsonl"), task.Kind("x")); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
