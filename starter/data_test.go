package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// Benchmark and dataset lines as the Hub has them (ARC's columns).
const (
	arcDev = `{"id":"q1","question":"Which gas do plants take in?","choices":{"text":["oxygen","carbon dioxide"],"label":["A","B"]},"answerKey":"B"}
{"id":"q2","question":"What is frozen water called?","choices":{"text":["steam","ice"],"label":["A","B"]},"answerKey":"B"}
`
	arcTest = `{"id":"q3","question":"Which planet is closest to the Sun?","choices":{"text":["Mercury","Mars"],"label":["A","B"]},"answerKey":"A"}
{"id":"q4","question":"What do bees make?","choices":{"text":["honey","milk"],"label":["A","B"]},"answerKey":"A"}
`
	pairs = `{"prompt":"2+2=","completion":"4"}
{"prompt":"3+3=","completion":"6"}
`
	chats = `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}
`
)

func dataDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	return dir
}

// tinyGGUF writes a tiny byte-level model without a chat template.
func tinyGGUF(t *testing.T, dir string, seed uint64) string {
	t.Helper()
	m, err := llm.NewTiny(llm.Config{Vocab: llm.ByteVocabLen, Dim: 32, Layers: 1, Heads: 2, KVHeads: 1, FFN: 64, Context: 64, RopeBase: 10000, NormEps: 1e-5}, seed, llm.Options{Threads: 1})
	require.NoError(t, err)
	defer m.Close()
	p := filepath.Join(dir, "m"+string(rune('0'+seed))+".gguf")
	_, err = m.Save(p)
	require.NoError(t, err)
	return p
}

// realConfig is a run over the user's files in dir: ARC dev and test files,
// a prompt/completion dataset, models given as files.
func realConfig(t *testing.T, dir string, models ...string) workflows.RunConfig {
	t.Helper()
	cfg := workflows.RunConfig{
		Name: "real", Seed: 3, Population: 2, Generations: 1,
		Selection: workflows.Selection{TournamentSize: 2},
		Init:      workflows.Init{Models: models},
		Fitness: workflows.Fitness{
			Dev:  []workflows.TaskSpec{{Source: "arc", Path: filepath.Join(dir, "arc-dev.jsonl")}},
			Test: []workflows.TaskSpec{{Source: "arc", Path: filepath.Join(dir, "arc-test.jsonl")}},
		},
		Mutation: workflows.Mutation{Datasets: []workflows.MutationDataset{{Path: filepath.Join(dir, "pairs.jsonl")}}},
	}
	cfg, err := workflows.Prepare(cfg)
	require.NoError(t, err)
	return cfg
}

func fileStore(t *testing.T) (*store.Store, func(context.Context) (*store.Store, error)) {
	t.Helper()
	st, err := store.Open(context.Background(), "file://"+t.TempDir(), store.Options{})
	require.NoError(t, err)
	return st, func(context.Context) (*store.Store, error) { return st, nil }
}

func sha(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The run's files go into the store under their sha256 and the config that
// starts the run names them only by store:<sha256>.
func TestUploadDataNamesEveryFileByItsHash(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "pairs.jsonl": pairs})
	cfg := realConfig(t, dir, "a.gguf", "b.gguf")
	st, open := fileStore(t)
	got, err := uploadData(context.Background(), open, cfg)
	require.NoError(t, err)
	require.Equal(t, "store:"+sha(t, filepath.Join(dir, "arc-dev.jsonl")), got.Fitness.Dev[0].Path)
	require.Equal(t, "store:"+sha(t, filepath.Join(dir, "arc-test.jsonl")), got.Fitness.Test[0].Path)
	require.Equal(t, "store:"+sha(t, filepath.Join(dir, "pairs.jsonl")), got.Mutation.Datasets[0].Path)
	require.Equal(t, filepath.Join(dir, "arc-dev.jsonl"), cfg.Fitness.Dev[0].Path, "the caller's config is not written into")
	for _, ref := range []string{got.Fitness.Dev[0].Path, got.Mutation.Datasets[0].Path} {
		r, _ := store.RefFromHex(strings.TrimPrefix(ref, "store:"))
		ok, err := st.Has(context.Background(), store.Data, r)
		require.NoError(t, err)
		require.True(t, ok, ref)
	}
	// Uploading a config that already names its data by hash changes nothing.
	again, err := uploadData(context.Background(), open, got)
	require.NoError(t, err)
	require.Equal(t, got, again)
}

// Each bad input is refused before anything starts, naming the field and the
// file with its line, row or column.
func TestUploadDataRefusesMissingFile(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-test.jsonl": arcTest, "pairs.jsonl": pairs})
	_, open := fileStore(t)
	_, err := uploadData(context.Background(), open, realConfig(t, dir, "a.gguf", "b.gguf"))
	require.ErrorContains(t, err, "fitness.dev[0].path: "+filepath.Join(dir, "arc-dev.jsonl")+": no such file or directory")
}

func TestUploadDataRefusesUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "pairs.jsonl": pairs})
	require.NoError(t, os.Chmod(filepath.Join(dir, "pairs.jsonl"), 0))
	_, open := fileStore(t)
	_, err := uploadData(context.Background(), open, realConfig(t, dir, "a.gguf", "b.gguf"))
	require.ErrorContains(t, err, "mutation.datasets[0].path")
	require.ErrorContains(t, err, "permission denied")
}

func TestUploadDataRefusesParquetWithoutTheSourcesColumns(t *testing.T) {
	type row struct {
		Question string `parquet:"question"`
		Answer   string `parquet:"answer"`
	}
	dir := dataDir(t, map[string]string{"arc-test.jsonl": arcTest, "pairs.jsonl": pairs})
	require.NoError(t, parquet.WriteFile(filepath.Join(dir, "arc-dev.parquet"), []row{{"q", "a"}}))
	cfg := realConfig(t, dir, "a.gguf", "b.gguf")
	cfg.Fitness.Dev[0].Path = filepath.Join(dir, "arc-dev.parquet")
	_, open := fileStore(t)
	_, err := uploadData(context.Background(), open, cfg)
	require.ErrorContains(t, err, "fitness.dev[0].path: ")
	require.ErrorContains(t, err, "arc-dev.parquet")
	require.ErrorContains(t, err, "choices.text")
}

func TestUploadDataRefusesJSONLLineOfTheWrongSchema(t *testing.T) {
	bad := arcDev + `{"id":"q9","question":"Where?","choices":{"text":["here"],"label":["A"]}}` + "\n"
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": bad, "arc-test.jsonl": arcTest, "pairs.jsonl": pairs})
	_, open := fileStore(t)
	_, err := uploadData(context.Background(), open, realConfig(t, dir, "a.gguf", "b.gguf"))
	require.ErrorContains(t, err, "fitness.dev[0].path: ")
	require.ErrorContains(t, err, "arc-dev.jsonl:3: ")
	require.ErrorContains(t, err, "answerKey")

	// A dataset record that is neither prompt/completion, text nor chat.
	dir = dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "pairs.jsonl": pairs + `{"question":"x","answer":"y"}` + "\n"})
	_, err = uploadData(context.Background(), open, realConfig(t, dir, "a.gguf", "b.gguf"))
	require.ErrorContains(t, err, "mutation.datasets[0].path: ")
	require.ErrorContains(t, err, "pairs.jsonl:3: no prompt+completion, text or messages field (the record has answer, question)")
}

func TestUploadDataRefusesStoreHashThatDoesNotMatchTheObject(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "pairs.jsonl": pairs})
	storeDir := t.TempDir()
	st, err := store.Open(context.Background(), "file://"+storeDir, store.Options{})
	require.NoError(t, err)
	open := func(context.Context) (*store.Store, error) { return st, nil }
	r, err := st.PutFile(context.Background(), store.Data, filepath.Join(dir, "pairs.jsonl"))
	require.NoError(t, err)
	cfg := realConfig(t, dir, "a.gguf", "b.gguf")
	cfg.Mutation.Datasets[0].Path = "store:" + r.Hex()
	// The object's bytes change under its name.
	require.NoError(t, os.WriteFile(filepath.Join(storeDir, "data", r.Hex()), []byte(`{"text":"other"}`+"\n"), 0o644))
	_, err = uploadData(context.Background(), open, cfg)
	require.ErrorContains(t, err, "mutation.datasets[0].path: store:"+r.Hex()+" does not match the store object's bytes")

	cfg.Mutation.Datasets[0].Path = "store:" + strings.Repeat("0", 64)
	_, err = uploadData(context.Background(), open, cfg)
	require.ErrorContains(t, err, "mutation.datasets[0].path: store:"+strings.Repeat("0", 64)+" is not in the store")
}

func TestUploadDataRefusesChatDatasetForModelWithoutTemplate(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "chat.jsonl": chats})
	models := []string{tinyGGUF(t, dir, 1), tinyGGUF(t, dir, 2)}
	cfg := realConfig(t, dir, models...)
	cfg.Mutation.Datasets[0].Path = filepath.Join(dir, "chat.jsonl")
	_, open := fileStore(t)
	_, err := uploadData(context.Background(), open, cfg)
	require.ErrorContains(t, err, "mutation.datasets[0].path: ")
	require.ErrorContains(t, err, "chat.jsonl is a chat dataset (record 1 has messages), but init.models[0] "+models[0]+" has no chat template (tokenizer.chat_template); set mutation.chat_template")

	// A template in the config renders it.
	cfg.Mutation.ChatTemplate = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
	got, err := uploadData(context.Background(), open, cfg)
	require.NoError(t, err)
	require.True(t, workflows.IsStoreRef(got.Mutation.Datasets[0].Path))
}

func TestUploadDataRefusesDatasetOfZeroUsableExamples(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "pairs.jsonl": "\n\n"})
	_, open := fileStore(t)
	_, err := uploadData(context.Background(), open, realConfig(t, dir, "a.gguf", "b.gguf"))
	require.ErrorContains(t, err, "mutation.datasets[0].path: ")
	require.ErrorContains(t, err, "no usable examples")
}

// Two names of one file are one store object: dev and test sharing items
// is refused after the upload, naming both fields.
func TestUploadDataRefusesDevAndTestOfTheSameBytes(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcDev, "pairs.jsonl": pairs})
	_, open := fileStore(t)
	_, err := uploadData(context.Background(), open, realConfig(t, dir, "a.gguf", "b.gguf"))
	require.ErrorContains(t, err, "fitness.test[0]: uses the same items as fitness.dev[0]")
}
