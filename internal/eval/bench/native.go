package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/evomerge/evomerge/internal/eval/task"
	"github.com/evomerge/evomerge/internal/tabular"
)

// Format is one benchmark's JSONL schema and prompt formatting.
type Format struct {
	Name string
	Kind task.Kind
	// Version changes whenever the prompt formatting changes, so cached
	// scores made with an older formatting are not reused.
	Version string
	parse   func(line []byte, id string) (task.Item, error)
	// columns a Parquet file must have (tabular.Options.Columns): the
	// Hugging Face Hub layout of the benchmark.
	columns []string
}

var formats = map[string]Format{
	"arc": {"arc", task.MultipleChoice, "arc-1", parseARC,
		[]string{"question", "choices.text", "choices.label", "answerKey"}},
	"hellaswag": {"hellaswag", task.MultipleChoice, "hellaswag-1", parseHellaSwag,
		[]string{"ctx_a|ctx", "endings", "label"}},
	"mmlu": {"mmlu", task.MultipleChoice, "mmlu-1", parseMMLU,
		[]string{"question", "choices", "answer"}},
	"truthfulqa_mc2": {"truthfulqa_mc2", task.MC2, "truthfulqa_mc2-1", parseTruthfulQAMC2,
		[]string{"question", "mc2_targets.choices", "mc2_targets.labels"}},
	"winogrande": {"winogrande", task.Partial, "winogrande-1", parseWinogrande,
		[]string{"sentence", "option1", "option2", "answer"}},
	"gsm8k": {"gsm8k", task.Generate, "gsm8k-1", parseGSM8K,
		[]string{"question", "answer"}},
}

// Formats lists the native benchmark schemas by name.
func Formats() []string {
	names := make([]string, 0, len(formats))
	for n := range formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the named native format.
func Lookup(name string) (Format, error) {
	f, ok := formats[name]
	if !ok {
		return Format{}, fmt.Errorf("unknown benchmark format %q (want one of %v)", name, Formats())
	}
	return f, nil
}

// LoadFile reads a benchmark file in this format: JSONL, gzipped JSONL or
// Parquet with the Hugging Face Hub's columns (found from the file's bytes).
// Every item is validated; the first bad line or row stops the load with
// its file and line or row number, and a Parquet file without the columns
// the format needs is refused before any row is read.
func (f Format) LoadFile(path string) ([]task.Item, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	return f.Read(fh, st.Size(), path)
}

// Read is LoadFile over a random-access reader of size bytes; name is used
// in errors and item IDs.
func (f Format) Read(r io.ReaderAt, size int64, name string) ([]task.Item, error) {
	var items []task.Item
	err := tabular.Each(r, size, name, tabular.Options{Columns: f.columns}, func(rec tabular.Record) error {
		if len(items) >= MaxItems {
			return fmt.Errorf("more than %d items", MaxItems)
		}
		it, err := f.parse(rec.JSON, rec.Loc)
		if err != nil {
			return err
		}
		it.ID = rec.Loc
		if err := it.Check(f.Kind); err != nil {
			return err
		}
		items = append(items, it)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: %s: no items", f.Name, name)
	}
	return items, nil
}

// flexInt accepts 3 and "3": HF exports write labels either way.
type flexInt struct {
	v   int
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		f.v, f.set = n, true
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want an integer or a string holding one, got %s", b)
	}
	if s == "" {
		return nil // unlabeled (e.g. a test split): reported by the caller
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want an integer, got %q", s)
	}
	f.v, f.set = n, true
	return nil
}

func decode(line []byte, v any) error {
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}

// ARC: "Question: {question}\nAnswer:" with " {choice}" continuations; the
// gold is the position of answerKey among choices.label.
func parseARC(line []byte, id string) (task.Item, error) {
	var d struct {
		Question string `json:"question"`
		Choices  struct {
			Text  []string `json:"text"`
			Label []string `json:"label"`
		} `json:"choices"`
		AnswerKey string `json:"answerKey"`
	}
	if err := decode(line, &d); err != nil {
		return task.Item{}, err
	}
	if d.Question == "" {
		return task.Item{}, fmt.Errorf("field question: missing or empty")
	}
	if len(d.Choices.Text) != len(d.Choices.Label) {
		return task.Item{}, fmt.Errorf("field choices: %d texts but %d labels", len(d.Choices.Text), len(d.Choices.Label))
	}
	gold := -1
	for i, l := range d.Choices.Label {
		if l == d.AnswerKey {
			gold = i
		}
	}
	if gold < 0 {
		return task.Item{}, fmt.Errorf("field answerKey: %q is not one of choices.label %v (no correct answer)", d.AnswerKey, d.Choices.Label)
	}
	return task.Item{
		Query:   "Question: " + d.Question + "\nAnswer:",
		Choices: d.Choices.Text,
		Gold:    gold,
	}, nil
}

var hellaswagBracket = regexp.MustCompile(`\[.*?\]`)

// hellaswagClean is the clean-up lm-eval applies to HellaSwag text: WikiHow
// "[title]" markers become sentence breaks, other bracketed markers go, and
// double spaces collapse once.
func hellaswagClean(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, " [title]", ". ")
	s = hellaswagBracket.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, "  ", " ")
}

// pyCapitalize is Python's str.capitalize: first letter upper, rest lower.
func pyCapitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + strings.ToLower(s[n:])
}

// HellaSwag: query is activity_label + ": " + ctx_a + " " + capitalised
// ctx_b, cleaned; endings are cleaned; scored with acc_norm.
func parseHellaSwag(line []byte, id string) (task.Item, error) {
	var d struct {
		ActivityLabel string   `json:"activity_label"`
		Ctx           string   `json:"ctx"`
		CtxA          *string  `json:"ctx_a"`
		CtxB          *string  `json:"ctx_b"`
		Endings       []string `json:"endings"`
		Label         flexInt  `json:"label"`
	}
	if err := decode(line, &d); err != nil {
		return task.Item{}, err
	}
	ctx := d.Ctx
	if d.CtxA != nil && d.CtxB != nil {
		ctx = *d.CtxA + " " + pyCapitalize(*d.CtxB)
	}
	if strings.TrimSpace(ctx) == "" {
		return task.Item{}, fmt.Errorf("field ctx: missing or empty (and no ctx_a/ctx_b)")
	}
	query := ctx
	if d.ActivityLabel != "" {
		query = d.ActivityLabel + ": " + ctx
	}
	if !d.Label.set {
		return task.Item{}, fmt.Errorf("field label: missing or empty (no correct answer)")
	}
	if d.Label.v < 0 || d.Label.v >= len(d.Endings) {
		return task.Item{}, fmt.Errorf("field label: index %d out of range for %d endings", d.Label.v, len(d.Endings))
	}
	choices := make([]string, len(d.Endings))
	for i, e := range d.Endings {
		choices[i] = hellaswagClean(e)
	}
	return task.Item{Query: hellaswagClean(query), Choices: choices, Gold: d.Label.v}, nil
}

// MMLU: subject description, question with lettered choices, " A".." D"
// continuations; few-shot examples come from the same subject.
func parseMMLU(line []byte, id string) (task.Item, error) {
	var d struct {
		Question string          `json:"question"`
		Subject  string          `json:"subject"`
		Choices  []string        `json:"choices"`
		Answer   json.RawMessage `json:"answer"`
	}
	if err := decode(line, &d); err != nil {
		return task.Item{}, err
	}
	if d.Question == "" {
		return task.Item{}, fmt.Errorf("field question: missing or empty")
	}
	if len(d.Choices) < 2 || len(d.Choices) > 26 {
		return task.Item{}, fmt.Errorf("field choices: %d choices (want 2..26)", len(d.Choices))
	}
	gold, err := mmluAnswer(d.Answer)
	if err != nil {
		return task.Item{}, fmt.Errorf("field answer: %w", err)
	}
	if gold < 0 || gold >= len(d.Choices) {
		return task.Item{}, fmt.Errorf("field answer: index %d out of range for %d choices", gold, len(d.Choices))
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(d.Question))
	letters := make([]string, len(d.Choices))
	for i, c := range d.Choices {
		letters[i] = string(rune('A' + i))
		fmt.Fprintf(&b, "\n%s. %s", letters[i], c)
	}
	b.WriteString("\nAnswer:")
	it := task.Item{Query: b.String(), Choices: letters, Gold: gold, Group: d.Subject}
	if d.Subject != "" {
		it.Description = "The following are multiple choice questions (with answers) about " +
			strings.ReplaceAll(d.Subject, "_", " ") + ".\n\n"
	}
	return it, nil
}

// mmluAnswer accepts the index (cais/mmlu) or a letter (some CSV exports).
func mmluAnswer(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, fmt.Errorf("missing (no correct answer)")
	}
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && len(s) == 1 && s[0] >= 'A' && s[0] <= 'Z' {
		return int(s[0] - 'A'), nil
	}
	return 0, fmt.Errorf("want an index or a letter A-Z, got %s", raw)
}

// TruthfulQA mc2: "Q: {question}\nA:" with " {answer}" continuations.
// lm-eval also prepends a fixed six-question primer; here few-shot examples
// come from a file instead (see the package README in eval).
func parseTruthfulQAMC2(line []byte, id string) (task.Item, error) {
	var d struct {
		Question string `json:"question"`
		MC2      *struct {
			Choices []string `json:"choices"`
			Labels  []int    `json:"labels"`
		} `json:"mc2_targets"`
	}
	if err := decode(line, &d); err != nil {
		return task.Item{}, err
	}
	if d.Question == "" {
		return task.Item{}, fmt.Errorf("field question: missing or empty")
	}
	if d.MC2 == nil {
		return task.Item{}, fmt.Errorf("field mc2_targets: missing")
	}
	return task.Item{Query: "Q: " + d.Question + "\nA:", Choices: d.MC2.Choices, Labels: d.MC2.Labels}, nil
}

// Winogrande partial scoring: each option replaces "_" and everything
// after it becomes the shared, scored suffix.
func parseWinogrande(line []byte, id string) (task.Item, error) {
	var d struct {
		Sentence string  `json:"sentence"`
		Option1  string  `json:"option1"`
		Option2  string  `json:"option2"`
		Answer   flexInt `json:"answer"`
	}
	if err := decode(line, &d); err != nil {
		return task.Item{}, err
	}
	at := strings.Index(d.Sentence, "_")
	if at < 0 {
		return task.Item{}, fmt.Errorf("field sentence: no \"_\" blank to fill")
	}
	if d.Option1 == "" || d.Option2 == "" {
		return task.Item{}, fmt.Errorf("field option1/option2: missing or empty")
	}
	if !d.Answer.set {
		return task.Item{}, fmt.Errorf("field answer: missing or empty (no correct answer)")
	}
	if d.Answer.v != 1 && d.Answer.v != 2 {
		return task.Item{}, fmt.Errorf("field answer: %d is not 1 or 2", d.Answer.v)
	}
	prefix := d.Sentence[:at]
	return task.Item{
		Contexts: []string{prefix + d.Option1, prefix + d.Option2},
		Suffix:   strings.TrimSpace(d.Sentence[at+1:]),
		Gold:     d.Answer.v - 1,
	}, nil
}

// GSM8K: "Question: {question}\nAnswer:", the reference keeps its worked
// solution (shown in few-shot examples) and ends in "#### N".
func parseGSM8K(line []byte, id string) (task.Item, error) {
	var d struct {
		Question string `json:"question"`
		Answer   string `json:"answer"`
	}
	if err := decode(line, &d); err != nil {
		return task.Item{}, err
	}
	if d.Question == "" {
		return task.Item{}, fmt.Errorf("field question: missing or empty")
	}
	if !strings.Contains(d.Answer, "#### ") {
		return task.Item{}, fmt.Errorf("field answer: no final \"#### N\" answer (no correct answer)")
	}
	return task.Item{Query: "Question: " + d.Question + "\nAnswer:", Answer: d.Answer}, nil
}
