package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/hf/hftest"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/internal/store/s3test"
	"github.com/evomerge/evomerge/workflows"
)

// starter eval scores a model on a suite file of native, generic and
// synthetic tasks and prints one row per task and metric.
func TestEvalCommandPrintsTable(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "suite.yaml": `
- {source: arc, path: ARC, n: 2}
- {family: comparison, n: 3, weight: 2}
`})
	suite := filepath.Join(dir, "suite.yaml")
	body := strings.ReplaceAll(readString(t, suite), "ARC", filepath.Join(dir, "arc-dev.jsonl"))
	suite = writeFile(t, "suite.yaml", body)
	model := tinyGGUF(t, dir, 1)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"eval", "-m", model, "-f", suite, "--threads", "1"}, &out, io.Discard))
	s := out.String()
	require.Regexp(t, `task\s*\|\s*metric\s*\|\s*value\s*\|\s*stderr\s*\|\s*n`, s)
	require.Regexp(t, `arc\s*\|\s*acc_norm\s*\|\s*[01]\.\d{4}\s*\|\s*\d\.\d{4}\s*\|\s*2`, s)
	require.Regexp(t, `\|\s*acc\s*\|\s*[01]\.\d{4}`, s, "the other metrics of a task follow it")
	require.Regexp(t, `comparison\s*\|\s*acc\s*\|\s*[01]\.\d{4}\s*\|\s*\d\.\d{4}\s*\|\s*3`, s)
	require.Contains(t, s, "fitness (weighted mean of the primary metrics): ")

	bad := writeFile(t, "bad.yaml", "tasks:\n  - source: arc\n    path: "+filepath.Join(dir, "none.jsonl")+"\n  - family: addition\n    nn: 3\n")
	err := run(context.Background(), []string{"eval", "-m", model, "-f", bad}, io.Discard, io.Discard)
	require.ErrorContains(t, err, `bad.yaml:5: json: unknown field "nn"`)
	bad = writeFile(t, "bad.yaml", "- source: arc\n  path: "+filepath.Join(dir, "none.jsonl")+"\n")
	err = run(context.Background(), []string{"eval", "-m", model, "-f", bad}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "tasks[0].path: "+filepath.Join(dir, "none.jsonl")+": no such file")
	bad = writeFile(t, "bad.yaml", "- source: squad\n  path: x\n")
	err = run(context.Background(), []string{"eval", "-m", model, "-f", bad}, io.Discard, io.Discard)
	require.ErrorContains(t, err, `bad.yaml:1: tasks[0].source: unknown source "squad"`)
}

// A run started the way `temporal workflow start --type Evolution --input
// @run.json` starts it: JSON whose data are store:<sha256> references,
// uploaded beforehand, runs to the end on the embedded server with the real
// activities: fitness and held-out scores from ARC files, children
// fine-tuned on a prompt/completion and a chat dataset from the store.
func TestWorkflowStartWithStoreReferencesRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	data := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "pairs.jsonl": pairs, "chat.jsonl": chats})
	port, err := devserver.FreePort()
	require.NoError(t, err)
	f := quickstartFlags{dir: dir, port: port, noUI: true, threads: 1}
	l, err := startLocal(ctx, f, workflows.TaskQueues{CPU: workflows.TaskQueueCPU, GPU: workflows.TaskQueueGPU}, io.Discard)
	require.NoError(t, err)
	defer l.Close()

	// The uploads `starter start` does, into the worker's store.
	u, err := quickstartStoreURL(f)
	require.NoError(t, err)
	st, err := store.Open(ctx, u, store.Options{})
	require.NoError(t, err)
	ref := func(name string) string {
		r, err := st.PutFile(ctx, store.Data, filepath.Join(data, name))
		require.NoError(t, err)
		return "store:" + r.Hex()
	}
	m1, m2 := tinyGGUF(t, data, 1), tinyGGUF(t, data, 2)
	input := fmt.Sprintf(`{
  "name": "bystore", "seed": 9, "population": 2, "generations": 1,
  "selection": {"tournament_size": 2},
  "init": {"models": [%q, %q]},
  "crossover": {"methods": [{"name": "linear"}]},
  "mutation": {"probability": 1, "steps": {"min": 2, "max": 2}, "examples": 8, "batch_size": 2,
    "datasets": [{"path": %q}, {"path": %q, "weight": 2}],
    "chat_template": "{%% for m in messages %%}<{{ m.role }}>{{ m.content }}\n{%% endfor %%}{%% if add_generation_prompt %%}<assistant>{%% endif %%}"},
  "fitness": {"dev": [{"source": "arc", "path": %q}], "test": [{"source": "arc", "path": %q}]}
}`, m1, m2, ref("pairs.jsonl"), ref("chat.jsonl"), ref("arc-dev.jsonl"), ref("arc-test.jsonl"))
	require.True(t, json.Valid([]byte(input)), input)
	run, err := l.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bystore", TaskQueue: workflows.TaskQueueCPU},
		workflows.WorkflowEvolution, json.RawMessage(input))
	require.NoError(t, err)
	var res workflows.RunResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, "completed 1 generations", res.StopReason)
	require.Zero(t, res.Dropped, "every child merged, fine-tuned on the store's datasets and scored")
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, res.Winner.Ref)
	require.Len(t, res.Winner.Tasks, 1)
	require.Equal(t, "arc", res.Winner.Tasks[0].Family)
	require.Equal(t, 2, res.Winner.Tasks[0].N)
	require.Equal(t, "acc_norm", res.Winner.Tasks[0].Metric)
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// starter eval takes a Hugging Face folder (local, file://, or an s3:// prefix of a real S3 server): it
// is converted with hf.Import and scored exactly as the GGUF that conversion writes.
func TestEvalCommandOnHFFolder(t *testing.T) {
	srv := s3test.Start(t)
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev})
	suite := writeFile(t, "suite.yaml", "- {source: arc, path: "+filepath.Join(dir, "arc-dev.jsonl")+", n: 2}\n- {family: comparison, n: 3}\n")
	folder := hfFolder(t, dir, "tiny-llama", hftest.Default(), nil)
	gguf := filepath.Join(dir, "tiny-llama.gguf")
	_, _, err := hf.ImportFile(folder, gguf)
	require.NoError(t, err)
	require.NoError(t, srv.PutDir(context.Background(), "models/tiny-llama/", folder))
	score := func(model string) string {
		t.Helper()
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"eval", "-m", model, "-f", suite, "--threads", "1"}, &out, io.Discard))
		first, rest, _ := strings.Cut(out.String(), "\n")
		require.Contains(t, first, "model: tiny-llama")
		return rest // the table, without the model's label
	}
	want := score(gguf)
	require.Regexp(t, `arc\s*\|\s*acc_norm\s*\|\s*[01]\.\d{4}`, want)
	require.Equal(t, want, score(folder))
	require.Equal(t, want, score("file://"+folder))
	require.Equal(t, want, score(srv.URL("models/tiny-llama/")))

	// A folder the engine cannot run is refused, naming it and its architectures value.
	bad := hfFolder(t, dir, "gemma", hftest.Default(), gemma)
	err = run(context.Background(), []string{"eval", "-m", bad, "-f", suite}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "-m "+bad+": hf: model "+bad+": config.json key architectures = [\"GemmaForCausalLM\"]")
}
