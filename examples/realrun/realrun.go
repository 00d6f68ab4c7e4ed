// Package realrun writes toy versions of every file examples/real-run.yaml names — tiny Mistral models
// as Hugging Face folders and a GGUF file, ARC-Challenge, HellaSwag and GSM8K Parquet files with the
// Hub's column layouts, an ultrachat-style Parquet chat dataset and a JSONL of chats — at the example's
// own relative paths, and scales the example down to run on them in seconds. The end-to-end test of the
// example uses it, and so can a user who wants to see the example's shape run before fetching 7B models
// (go run ./examples/realrun/toydata).
package realrun

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
	"gopkg.in/yaml.v3"

	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/hf/hftest"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// DevItems is how many items of each dev file the scaled-down run scores
// (every item of the user's own 4-item file).
const DevItems = 4

// Models are the directories (HF folders) and files (GGUF) WriteFiles puts
// under models/, by the example's names: four fine-tunes, the base, a GGUF.
var Models = []string{"models/Mistral-7B-Instruct-v0.2", "models/zephyr-7b-beta", "models/neural-chat-7b-v3-1",
	"models/mistral-math-7b", "models/Mistral-7B-v0.1", "models/mistral-code-7b.f16.gguf"}

// WriteFiles writes under dir, at the example's relative paths, the toy
// models and data files. It returns the data files by short name
// (arc-validation, hellaswag-train, gsm8k-test, ultrachat, chats, ...).
func WriteFiles(dir string) (map[string]string, error) {
	// The fine-tunes share one architecture and vocabulary and differ in
	// their weights; the Hub ships them in BF16.
	folder := func(p string, dtype safetensors.DType, seed uint64) error {
		o := hftest.Default()
		o.Architecture, o.DType, o.Seed = "MistralForCausalLM", dtype, seed
		return hftest.Write(p, o)
	}
	for i, rel := range Models[:5] {
		if err := folder(filepath.Join(dir, rel), safetensors.BF16, uint64(i+1)); err != nil {
			return nil, err
		}
	}
	// The GGUF member: a converted folder in F16, as llama.cpp's converter
	// writes them.
	tmp, err := os.MkdirTemp("", "realrun-gguf")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := folder(tmp, safetensors.F16, 6); err != nil {
		return nil, err
	}
	if _, _, err := hf.ImportFile(tmp, filepath.Join(dir, Models[5])); err != nil {
		return nil, err
	}

	files := map[string]string{}
	var werr error
	put := func(name, rel string, write func(path string) error) {
		if werr != nil {
			return
		}
		p := filepath.Join(dir, rel)
		if werr = os.MkdirAll(filepath.Dir(p), 0o755); werr == nil {
			werr = write(p)
		}
		files[name] = p
	}
	arc := func(split string, qs ...[3]string) func(string) error {
		var rows []hubARCRow
		for i, q := range qs {
			rows = append(rows, hubARCRow{ID: fmt.Sprintf("Mercury_%s_%d", split, i), Question: q[0],
				Choices: hubARCChoices{Text: []string{q[1], q[2], "sand", "wind"}, Label: []string{"A", "B", "C", "D"}}, AnswerKey: "A"})
		}
		return func(p string) error { return writeParquet(p, rows) }
	}
	put("arc-train", "data/ai2_arc/ARC-Challenge/train-00000-of-00001.parquet", arc("train",
		[3]string{"Which gas do plants take in?", "carbon dioxide", "helium"},
		[3]string{"What is frozen water called?", "ice", "steam"},
		[3]string{"What pulls objects toward Earth?", "gravity", "magnetism"}))
	put("arc-validation", "data/ai2_arc/ARC-Challenge/validation-00000-of-00001.parquet", arc("validation",
		[3]string{"Which planet is closest to the Sun?", "Mercury", "Mars"},
		[3]string{"What do bees make?", "honey", "milk"},
		[3]string{"Which organ pumps blood?", "the heart", "the lungs"},
		[3]string{"What is the boiling point of water at sea level?", "100 degrees Celsius", "50 degrees Celsius"},
		[3]string{"Which is a mammal?", "a whale", "a shark"},
		[3]string{"What makes a rainbow?", "light bent by water drops", "clouds rubbing"}))
	put("arc-test", "data/ai2_arc/ARC-Challenge/test-00000-of-00001.parquet", arc("test",
		[3]string{"Which metal is attracted to a magnet?", "iron", "copper"},
		[3]string{"What do roots take from the soil?", "water", "light"},
		[3]string{"Which is a renewable resource?", "sunlight", "coal"}))

	hella := func(split string, n int) func(string) error {
		var rows []hubHellaSwagRow
		for i := range n {
			rows = append(rows, hubHellaSwagRow{Ind: int32(i * 7), ActivityLabel: "Baking cookies",
				CtxA: fmt.Sprintf("A woman puts dough number %d on a tray.", i), CtxB: "she",
				Ctx:      fmt.Sprintf("A woman puts dough number %d on a tray. she", i),
				Endings:  []string{"puts the tray in the oven.", "throws the tray at the wall.", "sings to the dough.", "paints the oven red."},
				SourceID: fmt.Sprintf("activitynet~v_%s%d", split, i), Split: split, SplitType: "indomain", Label: fmt.Sprint(i % 4)})
		}
		return func(p string) error { return writeParquet(p, rows) }
	}
	put("hellaswag-train", "data/hellaswag/train-00000-of-00001.parquet", hella("train", 6))
	put("hellaswag-validation", "data/hellaswag/validation-00000-of-00001.parquet", hella("val", 3))

	gsm := func(qs ...[2]int) func(string) error {
		var rows []hubGSM8KRow
		for _, q := range qs {
			a, b := q[0], q[1]
			rows = append(rows, hubGSM8KRow{
				Question: fmt.Sprintf("Tom has %d apples and buys %d more. How many apples does he have?", a, b),
				Answer:   fmt.Sprintf("He has %d + %d = <<%d+%d=%d>>%d apples.\n#### %d", a, b, a, b, a+b, a+b, a+b),
			})
		}
		return func(p string) error { return writeParquet(p, rows) }
	}
	put("gsm8k-train", "data/gsm8k/main/train-00000-of-00001.parquet", gsm([2]int{2, 3}, [2]int{4, 1}, [2]int{5, 5}, [2]int{7, 2}, [2]int{1, 8}, [2]int{6, 3}))
	put("gsm8k-test", "data/gsm8k/main/test-00000-of-00001.parquet", gsm([2]int{3, 3}, [2]int{9, 1}, [2]int{2, 7}))

	// A benchmark of the user's own in the generic schema: gzipped JSONL
	// for dev, plain JSONL for test.
	mine := func(gz bool, qs ...[3]string) func(string) error {
		var b bytes.Buffer
		for _, q := range qs {
			line, err := json.Marshal(map[string]any{"query": "Question: " + q[0] + "\nAnswer:", "choices": []string{q[1], q[2]}, "gold": 0})
			if err != nil {
				return func(string) error { return err }
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		return func(p string) error {
			if !gz {
				return os.WriteFile(p, b.Bytes(), 0o644)
			}
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			if _, err := zw.Write(b.Bytes()); err != nil {
				return err
			}
			if err := zw.Close(); err != nil {
				return err
			}
			return os.WriteFile(p, z.Bytes(), 0o644)
		}
	}
	put("my-domain-dev", "data/my-domain/dev.jsonl.gz", mine(true,
		[3]string{"Which valve stops the flow?", "the closed one", "the open one"},
		[3]string{"Which pipe carries more water?", "the wide one", "the narrow one"},
		[3]string{"What does a pump add to water?", "pressure", "colour"},
		[3]string{"Where does a drain lead?", "to the sewer", "to the roof"}))
	put("my-domain-test", "data/my-domain/test.jsonl", mine(false,
		[3]string{"What seals a pipe joint?", "a gasket", "a feather"},
		[3]string{"Which way does water flow without a pump?", "downhill", "uphill"},
		[3]string{"What measures water pressure?", "a gauge", "a ruler"}))

	// HuggingFaceH4/ultrachat_200k's train_sft layout (prompt, prompt_id,
	// messages) and a JSONL of the user's own chats.
	put("ultrachat", "data/ultrachat_200k/train_sft-00000-of-00003.parquet", func(p string) error {
		var rows []hubUltraChatRow
		for i, qa := range [][2]string{{"Name a primary color.", "Red is a primary color."},
			{"What is two plus two?", "Two plus two is four."}, {"Say hello in French.", "Bonjour."}} {
			rows = append(rows, hubUltraChatRow{Prompt: qa[0], PromptID: fmt.Sprintf("%064x", i),
				Messages: []hubMessage{{Content: qa[0], Role: "user"}, {Content: qa[1], Role: "assistant"}}})
		}
		return writeParquet(p, rows)
	})
	put("chats", "data/my-chats.jsonl", func(p string) error {
		return os.WriteFile(p, []byte(
			`{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris."}]}
{"messages":[{"role":"user","content":"Is ice cold?"},{"role":"assistant","content":"Yes, ice is cold."},{"role":"user","content":"And fire?"},{"role":"assistant","content":"Fire is hot."}]}
`), 0o644)
	})
	return files, werr
}

// ScaleDown is the example with only its paths and sizes changed: the S3
// member becomes the local folder of the same name (WriteFiles writes it),
// and the run shrinks to one generation of two children, every child
// fine-tuned for a few steps on a few examples, each task scored on a few
// items with one-shot prompts and short answers.
func ScaleDown(example []byte) ([]byte, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(example, &cfg); err != nil {
		return nil, err
	}
	section := func(v any, name string) (map[string]any, error) {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("realrun: %s is not a mapping", name)
		}
		return m, nil
	}
	init, err := section(cfg["init"], "init")
	if err != nil {
		return nil, err
	}
	models, _ := init["models"].([]any)
	for i, p := range models {
		if s, ok := p.(string); ok && strings.HasPrefix(s, "s3://") {
			models[i] = "models/" + filepath.Base(strings.TrimSuffix(s, "/"))
		}
	}
	cfg["population"], cfg["generations"], cfg["parallelism"] = 4, 1, 2
	mu, err := section(cfg["mutation"], "mutation")
	if err != nil {
		return nil, err
	}
	mu["probability"], mu["ranks"], mu["examples"], mu["batch_size"] = 1.0, []int{2, 4}, 8, 2
	mu["steps"] = map[string]any{"min": 2, "max": 3}
	fit, err := section(cfg["fitness"], "fitness")
	if err != nil {
		return nil, err
	}
	for _, list := range []string{"dev", "test"} {
		tasks, _ := fit[list].([]any)
		for i, v := range tasks {
			task, err := section(v, fmt.Sprintf("fitness.%s[%d]", list, i))
			if err != nil {
				return nil, err
			}
			if n, ok := task["n"].(int); ok && n > DevItems {
				task["n"] = DevItems
			}
			task["fewshot"] = 1
			if _, ok := task["max_tokens"]; ok {
				task["max_tokens"] = 8
			}
		}
	}
	return yaml.Marshal(cfg)
}

// The Hub's Parquet layouts (every column optional, as pyarrow writes them).
type hubARCChoices struct {
	Text  []string `parquet:"text,optional,list"`
	Label []string `parquet:"label,optional,list"`
}

type hubARCRow struct { // allenai/ai2_arc ARC-Challenge/*.parquet
	ID        string        `parquet:"id,optional"`
	Question  string        `parquet:"question,optional"`
	Choices   hubARCChoices `parquet:"choices,optional"`
	AnswerKey string        `parquet:"answerKey,optional"`
}

type hubHellaSwagRow struct { // Rowan/hellaswag
	Ind           int32    `parquet:"ind,optional"`
	ActivityLabel string   `parquet:"activity_label,optional"`
	CtxA          string   `parquet:"ctx_a,optional"`
	CtxB          string   `parquet:"ctx_b,optional"`
	Ctx           string   `parquet:"ctx,optional"`
	Endings       []string `parquet:"endings,optional,list"`
	SourceID      string   `parquet:"source_id,optional"`
	Split         string   `parquet:"split,optional"`
	SplitType     string   `parquet:"split_type,optional"`
	Label         string   `parquet:"label,optional"`
}

type hubGSM8KRow struct { // openai/gsm8k main/*.parquet
	Question string `parquet:"question,optional"`
	Answer   string `parquet:"answer,optional"`
}

type hubMessage struct {
	Content string `parquet:"content,optional"`
	Role    string `parquet:"role,optional"`
}

type hubUltraChatRow struct { // HuggingFaceH4/ultrachat_200k data/train_sft-*.parquet
	Prompt   string       `parquet:"prompt,optional"`
	PromptID string       `parquet:"prompt_id,optional"`
	Messages []hubMessage `parquet:"messages,optional,list"`
}

func writeParquet[T any](path string, rows []T) error {
	var b bytes.Buffer
	w := parquet.NewGenericWriter[T](&b)
	if _, err := w.Write(rows); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
