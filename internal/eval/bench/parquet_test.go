package bench

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/evomerge/evomerge/internal/eval/task"
)

// The row types below are the Hugging Face Hub's Parquet layouts of each
// benchmark (column names, nesting, value types; every column optional, as
// pyarrow writes them), so these tests read files shaped like the Hub's.

type hubARCChoices struct {
	Text  []string `json:"text" parquet:"text,optional,list"`
	Label []string `json:"label" parquet:"label,optional,list"`
}

type hubARC struct { // allenai/ai2_arc, ARC-Challenge/test-*.parquet
	ID        *string        `json:"id" parquet:"id,optional"`
	Question  *string        `json:"question" parquet:"question,optional"`
	Choices   *hubARCChoices `json:"choices" parquet:"choices,optional"`
	AnswerKey *string        `json:"answerKey" parquet:"answerKey,optional"`
}

type hubHellaSwag struct { // Rowan/hellaswag, data/validation-*.parquet
	Ind           *int32   `json:"ind" parquet:"ind,optional"`
	ActivityLabel *string  `json:"activity_label" parquet:"activity_label,optional"`
	CtxA          *string  `json:"ctx_a" parquet:"ctx_a,optional"`
	CtxB          *string  `json:"ctx_b" parquet:"ctx_b,optional"`
	Ctx           *string  `json:"ctx" parquet:"ctx,optional"`
	Endings       []string `json:"endings" parquet:"endings,optional,list"`
	SourceID      *string  `json:"source_id" parquet:"source_id,optional"`
	Split         *string  `json:"split" parquet:"split,optional"`
	SplitType     *string  `json:"split_type" parquet:"split_type,optional"`
	Label         *string  `json:"label" parquet:"label,optional"`
}

type hubMMLU struct { // cais/mmlu, all/test-*.parquet
	Question *string  `json:"question" parquet:"question,optional"`
	Subject  *string  `json:"subject" parquet:"subject,optional"`
	Choices  []string `json:"choices" parquet:"choices,optional,list"`
	Answer   *int64   `json:"answer" parquet:"answer,optional"`
}

type hubTargets struct {
	Choices []string `json:"choices" parquet:"choices,optional,list"`
	Labels  []int32  `json:"labels" parquet:"labels,optional,list"`
}

type hubTruthfulQA struct { // truthfulqa/truthful_qa, multiple_choice/validation-*.parquet
	Question   *string     `json:"question" parquet:"question,optional"`
	MC1Targets *hubTargets `json:"mc1_targets" parquet:"mc1_targets,optional"`
	MC2Targets *hubTargets `json:"mc2_targets" parquet:"mc2_targets,optional"`
}

type hubWinogrande struct { // allenai/winogrande, winogrande_xl/validation-*.parquet
	Sentence *string `json:"sentence" parquet:"sentence,optional"`
	Option1  *string `json:"option1" parquet:"option1,optional"`
	Option2  *string `json:"option2" parquet:"option2,optional"`
	Answer   *string `json:"answer" parquet:"answer,optional"`
}

type hubGSM8K struct { // openai/gsm8k, main/test-*.parquet
	Question *string `json:"question" parquet:"question,optional"`
	Answer   *string `json:"answer" parquet:"answer,optional"`
}

func sp(s string) *string { return &s }

// writeAll writes rows as Parquet (two rows per row group, so readers must
// cross row groups), JSONL and gzipped JSONL, and returns the three paths.
func writeAll[T any](t *testing.T, name string, rows []T) (pq, jl, gz string) {
	t.Helper()
	dir := t.TempDir()
	pq = filepath.Join(dir, name+".parquet")
	jl = filepath.Join(dir, name+".jsonl")
	gz = filepath.Join(dir, name+".jsonl.gz")
	var b bytes.Buffer
	w := parquet.NewGenericWriter[T](&b, parquet.MaxRowsPerRowGroup(2))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pq, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	for _, r := range rows {
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		lines.Write(js)
		lines.WriteByte('\n')
	}
	if err := os.WriteFile(jl, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(lines.Bytes())
	zw.Close()
	if err := os.WriteFile(gz, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return pq, jl, gz
}

// sameItems loads the three files and checks they give the same items
// (IDs aside: they name the file and line or row).
func sameItems(t *testing.T, format string, pq, jl, gz string, wantN int) []task.Item {
	t.Helper()
	f, err := Lookup(format)
	if err != nil {
		t.Fatal(err)
	}
	var got [3][]task.Item
	for i, p := range []string{pq, jl, gz} {
		items, err := f.LoadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		for j := range items {
			if i == 0 && j == len(items)-1 && !strings.HasSuffix(items[j].ID, ": row "+itoa(len(items))) {
				t.Fatalf("parquet item ID %q does not name its row", items[j].ID)
			}
			items[j].ID = ""
		}
		got[i] = items
	}
	if len(got[0]) != wantN {
		t.Fatalf("%s: %d items from Parquet, want %d", format, len(got[0]), wantN)
	}
	for i := 1; i < 3; i++ {
		if !reflect.DeepEqual(got[0], got[i]) {
			t.Fatalf("%s: Parquet and JSONL items differ\nparquet %+v\njsonl   %+v", format, got[0], got[i])
		}
	}
	return got[0]
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestParquetHubLayouts(t *testing.T) {
	t.Run("arc", func(t *testing.T) {
		rows := []hubARC{
			{sp("Mercury_1"), sp("Which gas do plants take in?"), &hubARCChoices{[]string{"oxygen", "carbon dioxide", "helium"}, []string{"A", "B", "C"}}, sp("B")},
			{sp("Mercury_2"), sp("What is frozen water?"), &hubARCChoices{[]string{"steam", "ice"}, []string{"1", "2"}}, sp("2")},
			{sp("Mercury_3"), sp("Closest planet to the Sun?"), &hubARCChoices{[]string{"Mercury", "Venus", "Earth", "Mars"}, []string{"A", "B", "C", "D"}}, sp("A")},
		}
		pq, jl, gz := writeAll(t, "arc", rows)
		items := sameItems(t, "arc", pq, jl, gz, 3)
		if items[0].Query != "Question: Which gas do plants take in?\nAnswer:" || items[0].Gold != 1 || items[1].Gold != 1 || items[2].Gold != 0 {
			t.Fatalf("%+v", items)
		}
	})
	t.Run("hellaswag", func(t *testing.T) {
		ind := int32(4)
		rows := []hubHellaSwag{
			{&ind, sp("Removing ice from car"), sp("Then, the man writes over the snow."), sp("then"), sp("Then, the man writes over the snow. then"),
				[]string{", the man adds wax.", ", a person boards a lift.", ", the man sings.", ", the man continues removing the snow."},
				sp("activitynet~v_-1IBHYS3L-Y"), sp("val"), sp("indomain"), sp("3")},
			{&ind, sp("Home and Garden"), sp("How to grow a plant [title] Choose a pot."), sp("water it daily"), nil,
				[]string{" Give it sun.", " Never  water it."}, nil, nil, nil, sp("0")},
		}
		pq, jl, gz := writeAll(t, "hellaswag", rows)
		items := sameItems(t, "hellaswag", pq, jl, gz, 2)
		if items[0].Gold != 3 || items[1].Query != "Home and Garden: How to grow a plant. Choose a pot. Water it daily" {
			t.Fatalf("%+v", items)
		}
	})
	t.Run("mmlu", func(t *testing.T) {
		one, zero := int64(1), int64(0)
		rows := []hubMMLU{
			{sp("What is 2 + 2?"), sp("elementary_mathematics"), []string{"3", "4", "5", "22"}, &one},
			{sp("Who wrote Hamlet?"), sp("world_literature"), []string{"Shakespeare", "Dickens", "Austen", "Tolstoy"}, &zero},
			{sp("Capital of France?"), sp("geography"), []string{"Lyon", "Paris", "Nice", "Lille"}, &one},
		}
		pq, jl, gz := writeAll(t, "mmlu", rows)
		items := sameItems(t, "mmlu", pq, jl, gz, 3)
		if items[1].Gold != 0 || items[1].Group != "world_literature" {
			t.Fatalf("%+v", items[1])
		}
	})
	t.Run("truthfulqa_mc2", func(t *testing.T) {
		rows := []hubTruthfulQA{
			{sp("What happens if you crack your knuckles a lot?"),
				&hubTargets{[]string{"Nothing in particular happens.", "You will get arthritis."}, []int32{1, 0}},
				&hubTargets{[]string{"Nothing in particular happens.", "It does no harm.", "You will get arthritis."}, []int32{1, 1, 0}}},
			{sp("Is the Earth flat?"), &hubTargets{[]string{"No.", "Yes."}, []int32{1, 0}}, &hubTargets{[]string{"No, it is round.", "Yes."}, []int32{1, 0}}},
		}
		pq, jl, gz := writeAll(t, "tqa", rows)
		items := sameItems(t, "truthfulqa_mc2", pq, jl, gz, 2)
		if !reflect.DeepEqual(items[0].Labels, []int{1, 1, 0}) {
			t.Fatalf("%+v", items[0])
		}
	})
	t.Run("winogrande", func(t *testing.T) {
		rows := []hubWinogrande{
			{sp("The trophy doesn't fit into the suitcase because _ is too large."), sp("the trophy"), sp("the suitcase"), sp("1")},
			{sp("Sarah gave Maria a gift because _ was kind to her."), sp("Sarah"), sp("Maria"), sp("2")},
		}
		pq, jl, gz := writeAll(t, "wino", rows)
		items := sameItems(t, "winogrande", pq, jl, gz, 2)
		if items[1].Gold != 1 || items[0].Suffix != "is too large." {
			t.Fatalf("%+v", items)
		}
	})
	t.Run("gsm8k", func(t *testing.T) {
		rows := []hubGSM8K{
			{sp("Tom has 3 apples and buys 4 more. How many?"), sp("3 + 4 = <<3+4=7>>7\n#### 7")},
			{sp("A book costs $1,200 and a pen $5. Total?"), sp("1,200 + 5 = 1205\n#### 1,205")},
			{sp("What is 10 / 2?"), sp("10 / 2 = 5\n#### 5")},
		}
		pq, jl, gz := writeAll(t, "gsm8k", rows)
		items := sameItems(t, "gsm8k", pq, jl, gz, 3)
		if !strings.HasSuffix(items[2].Answer, "#### 5") {
			t.Fatalf("%+v", items[2])
		}
	})
}

func TestParquetGeneric(t *testing.T) {
	type row struct {
		Query   string   `json:"query" parquet:"query"`
		Choices []string `json:"choices" parquet:"choices,list"`
		Gold    int64    `json:"gold" parquet:"gold"`
	}
	pq, jl, _ := writeAll(t, "mine", []row{{"2+2=", []string{" 4", " 5"}, 0}, {"3+3=", []string{" 5", " 6"}, 1}})
	a, err := LoadGeneric(pq, task.MultipleChoice)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadGeneric(jl, task.MultipleChoice)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		a[i].ID, b[i].ID = "", ""
	}
	if !reflect.DeepEqual(a, b) || len(a) != 2 || a[1].Gold != 1 {
		t.Fatalf("parquet %+v\njsonl %+v", a, b)
	}
}

func TestParquetBadInputs(t *testing.T) {
	// GSM8K file given as ARC: the error names the file and the missing
	// column, and lists the columns the file has.
	pq, _, _ := writeAll(t, "gsm8k", []hubGSM8K{{sp("q"), sp("#### 1")}})
	f, _ := Lookup("arc")
	_, err := f.LoadFile(pq)
	if err == nil || !strings.Contains(err.Error(), `arc: `) || !strings.Contains(err.Error(), `gsm8k.parquet: no column "choices.text" (the file has question, answer)`) {
		t.Fatalf("missing column: err = %v", err)
	}
	// HellaSwag needs ctx_a or ctx.
	f, _ = Lookup("hellaswag")
	if _, err := f.LoadFile(pq); err == nil || !strings.Contains(err.Error(), `gsm8k.parquet: no column "ctx_a" or "ctx"`) {
		t.Fatalf("alternatives: err = %v", err)
	}
	// A bad value in row 3 (second row group) names the row and the field.
	one := int64(1)
	bad := int64(7)
	pq, _, _ = writeAll(t, "mmlu", []hubMMLU{
		{sp("a?"), sp("s"), []string{"x", "y"}, &one}, {sp("b?"), sp("s"), []string{"x", "y"}, &one},
		{sp("c?"), sp("s"), []string{"x", "y"}, &bad},
	})
	f, _ = Lookup("mmlu")
	if _, err := f.LoadFile(pq); err == nil || !strings.Contains(err.Error(), "mmlu.parquet: row 3: field answer: index 7 out of range for 2 choices") {
		t.Fatalf("bad row: err = %v", err)
	}
	// A null answer (unlabeled split) is no correct answer.
	pq, _, _ = writeAll(t, "mmlu_unlabeled", []hubMMLU{{sp("a?"), sp("s"), []string{"x", "y"}, nil}})
	if _, err := f.LoadFile(pq); err == nil || !strings.Contains(err.Error(), "row 1: field answer: missing") {
		t.Fatalf("null answer: err = %v", err)
	}
	// Zero rows.
	pq, _, _ = writeAll(t, "empty", []hubMMLU{})
	if _, err := f.LoadFile(pq); err == nil || !strings.Contains(err.Error(), "empty.parquet: no items") {
		t.Fatalf("empty: err = %v", err)
	}
	// Truncated file.
	data, _ := os.ReadFile(filepath.Join(filepath.Dir(pq), "empty.parquet"))
	trunc := filepath.Join(t.TempDir(), "trunc.parquet")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	if _, err := f.LoadFile(trunc); err == nil || !strings.Contains(err.Error(), "trunc.parquet: malformed Parquet file") {
		t.Fatalf("truncated: err = %v", err)
	}
	// A JSONL line of the wrong schema inside a gzipped file names the line.
	gz := filepath.Join(t.TempDir(), "mixed.jsonl.gz")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(`{"question":"q","choices":["a","b"],"answer":0}` + "\n" + `{"text":"not mmlu"}` + "\n"))
	zw.Close()
	os.WriteFile(gz, z.Bytes(), 0o644)
	if _, err := f.LoadFile(gz); err == nil || !strings.Contains(err.Error(), "mixed.jsonl.gz:2: field question: missing") {
		t.Fatalf("gz wrong schema: err = %v", err)
	}
}
