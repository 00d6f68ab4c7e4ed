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

	"github.com/evomerge/evomerge/examples/realrun"
	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/internal/store/s3test"
	"github.com/evomerge/evomerge/workflows"
)

// examplePath is the example the README walks through.
const examplePath = "../examples/real-run.yaml"

// The example as shipped is a valid run config: the starter's parser and
// workflows.Prepare accept it (its files need not exist for that).
func TestRealRunExampleParses(t *testing.T) {
	cfg, err := loadRunConfig(examplePath)
	require.NoError(t, err)
	require.Len(t, cfg.Fitness.Dev, 4)
	require.Len(t, cfg.Fitness.Test, 4)
	for _, ts := range [][]workflows.TaskSpec{cfg.Fitness.Dev, cfg.Fitness.Test} {
		var sources []string
		for _, task := range ts[:3] {
			sources = append(sources, task.Source)
			require.True(t, strings.HasSuffix(task.Path, ".parquet"), "%s is read from the Hub's Parquet file", task.Path)
		}
		require.Equal(t, []string{"arc", "hellaswag", "gsm8k"}, sources)
		require.Equal(t, workflows.SourceJSONL, ts[3].Source)
	}
	require.NotEmpty(t, cfg.Init.Base)
	require.Len(t, cfg.Init.Models, 5)
	require.Len(t, cfg.Mutation.Datasets, 2)
	require.Equal(t, "path", cfg.Publish.Kind)
}

// Every field of the example says what it does: each line that sets a value
// carries a comment, or sits under a comment that explains it.
func TestRealRunExampleCommentsEveryField(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		s := strings.TrimSpace(l)
		if s == "" || strings.HasPrefix(s, "#") || strings.Contains(s, " # ") {
			continue
		}
		// A list item's continuation lines (path:, fewshot_path:) are
		// explained by the comment above the item.
		explained := false
		for j := i - 1; j >= 0 && j >= i-8; j-- {
			p := strings.TrimSpace(lines[j])
			if strings.HasPrefix(p, "#") {
				explained = true
				break
			}
			if strings.HasPrefix(p, "- ") { // the item's first line: its comment, or the one above it
				explained = strings.Contains(p, " # ") || j > 0 && strings.HasPrefix(strings.TrimSpace(lines[j-1]), "#")
				break
			}
			if p == "" || indent(lines[j]) < indent(l) {
				break
			}
		}
		require.True(t, explained, "examples/real-run.yaml:%d: %q says nothing about what it does", i+1, s)
	}
}

func indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// The example's start-time checks pass on files of the Hub's schemas: every
// data file is read as its source reads it, uploaded into the store, and the
// config that would start the run names data only by store:<sha256>.
func TestRealRunExamplePassesTheStartChecks(t *testing.T) {
	dir := t.TempDir()
	writeRealRunFiles(t, dir)
	cfg, err := loadRunConfig(writeRealRunConfig(t, dir))
	require.NoError(t, err)
	t.Chdir(dir) // the example's paths are relative to where the starter runs
	st, open := fileStore(t)
	cfg, err = uploadData(context.Background(), open, cfg)
	require.NoError(t, err)
	n := 0
	require.NoError(t, cfg.DataRefs(func(field string, ref *string) error {
		n++
		require.True(t, workflows.IsStoreRef(*ref), "%s is %q, not a store reference", field, *ref)
		r, err := store.RefFromHex(strings.TrimPrefix(*ref, workflows.StorePrefix))
		require.NoError(t, err)
		ok, err := st.Has(context.Background(), store.Data, r)
		require.NoError(t, err)
		require.True(t, ok, "%s: %s is in the store", field, *ref)
		return nil
	}))
	// 4 dev paths + 4 test paths + 4 few-shot paths + 2 datasets.
	require.Equal(t, 14, n)
}

// TestRealRunEndToEnd runs examples/real-run.yaml, with only its paths and
// sizes changed, through `starter start --watch` on the embedded Temporal
// server with an in-process worker and an S3 store (versitygw): Hugging Face
// folders and a GGUF file as the population, ARC-Challenge, HellaSwag and
// GSM8K Parquet files of the Hub's schemas and a gzipped JSONL benchmark of
// the user's own for fitness, a Parquet and a JSONL chat dataset for the
// fine-tunes, the held-out splits at the end, and the winner published as
// GGUF and as a Hugging Face folder. About 3 s at one thread.
func TestRealRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded server and an S3 server, imports, merges, fine-tunes and scores tiny models")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s3 := s3test.Start(t)
	storeURL := s3.StoreURL("realrun")

	dir := t.TempDir()
	files := writeRealRunFiles(t, dir)
	config := writeRealRunConfig(t, dir)
	// The example's paths are relative to where the starter runs; the
	// in-process worker reads the model paths from the same directory.
	t.Chdir(dir)

	port, err := devserver.FreePort()
	require.NoError(t, err)
	state := filepath.Join(dir, ".evomerge")
	l, err := startLocal(ctx, quickstartFlags{dir: state, port: port, noUI: true, threads: 1, storeURL: storeURL},
		workflows.TaskQueues{CPU: workflows.TaskQueueCPU, GPU: workflows.TaskQueueGPU}, io.Discard)
	require.NoError(t, err)
	defer l.Close()

	var out, errb bytes.Buffer
	err = run(ctx, []string{"start", "-f", config, "--watch", "--address", l.srv.FrontendAddr(), "--store", storeURL}, &out, &errb)
	require.NoError(t, err, out.String()+errb.String())
	t.Log(out.String())
	require.Contains(t, out.String(), "run mistral-evo finished: completed 1 generations", out.String())
	require.Contains(t, out.String(), "held-out: winner ", out.String())

	const id = "evo-mistral-evo"
	var res workflows.RunResult
	require.NoError(t, l.client.GetWorkflow(ctx, id, "").Get(ctx, &res))

	// The workflow input names every data file by its hash, and the
	// starter put those bytes into the store.
	input := workflowInput(ctx, t, l, id)
	st, err := store.Open(ctx, storeURL, store.Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	refs := 0
	require.NoError(t, input.RunConfig.DataRefs(func(field string, ref *string) error {
		refs++
		require.True(t, workflows.IsStoreRef(*ref), "%s is %q in the workflow input, not a store reference", field, *ref)
		return nil
	}))
	require.Equal(t, 14, refs)
	for name, path := range files {
		r, err := store.RefFromHex(sha(t, path))
		require.NoError(t, err)
		ok, err := st.Has(ctx, store.Data, r)
		require.NoError(t, err)
		require.True(t, ok, "%s (%s) was uploaded to the store", name, path)
		raw, _ := json.Marshal(input.RunConfig)
		require.Contains(t, string(raw), workflows.StoreRef(sha(t, path)), "the run names %s by its hash", name)
		require.NotContains(t, string(raw), filepath.Base(path), "the run does not name %s by its path", name)
	}

	// Every model of generation 0 and every child was scored on every dev
	// task, on the items the config asked for.
	lineage, err := queryNodes(ctx, l.client, id, workflows.QueryLineage)
	require.NoError(t, err)
	initial, children, tuned := 0, 0, 0
	var initialIDs []int
	for _, n := range lineage {
		if n.Status == workflows.StatusDropped {
			t.Fatalf("#%d was dropped: %s", n.ID, n.Reason)
		}
		require.True(t, n.Scored, "#%d is scored", n.ID)
		var names []string
		for _, s := range n.Tasks {
			names = append(names, s.Family)
			require.Equal(t, realrun.DevItems, s.N, "#%d %s scored on %d items", n.ID, s.Family, s.N)
			require.GreaterOrEqual(t, s.Score, 0.0)
			require.LessOrEqual(t, s.Score, 1.0)
		}
		require.ElementsMatch(t, []string{"arc_challenge", "hellaswag", "gsm8k", "my_domain"}, names, "#%d's scores", n.ID)
		if n.Generation == 0 {
			initial++
			initialIDs = append(initialIDs, n.ID)
			require.Contains(t, n.Op, "import ")
			continue
		}
		children++
		// Each child fine-tuned on a mixture of the user's two datasets,
		// recorded in its lineage by their hashes.
		if strings.Contains(n.Op, "fine-tune") {
			t.Logf("#%d: %s", n.ID, n.Op)
			tuned++
			for _, name := range []string{"ultrachat", "chats"} {
				require.Contains(t, n.Op, workflows.StoreRef(sha(t, files[name]))[:len(workflows.StorePrefix)+8], "#%d trained on %s: %s", n.ID, name, n.Op)
			}
		}
	}
	require.Equal(t, 5, initial, "generation 0 is the five given models")
	require.Equal(t, 2, children)
	require.Equal(t, children, tuned, "every child was fine-tuned (mutation.probability 1)")
	require.Positive(t, res.TrainTokens, "the fine-tunes trained on tokens of the datasets")

	// The held-out splits were scored for the winner and the best initial
	// model.
	require.Positive(t, res.HeldOutTokens, "the held-out tasks were scored")
	require.Contains(t, initialIDs, res.HeldOut.InitialID, "the held-out baseline is a model of generation 0")
	require.GreaterOrEqual(t, res.HeldOut.Winner, 0.0)
	require.GreaterOrEqual(t, res.HeldOut.InitialBest, 0.0)
	require.Contains(t, out.String(), fmt.Sprintf("held-out: winner %.4f vs best initial model #%d %.4f", res.HeldOut.Winner, res.HeldOut.InitialID, res.HeldOut.InitialBest))

	// The winner is published as GGUF, byte for byte, and as a Hugging
	// Face folder that imports back to the same tensors.
	winner := filepath.Join(dir, "out", "mistral-evo-winner.gguf")
	require.Equal(t, winner, res.Published)
	require.Equal(t, string(res.Winner.Ref), "sha256:"+sha(t, winner), "the published GGUF is the winner")
	hfDir := filepath.Join(dir, "out", "mistral-evo-winner-hf")
	for _, f := range []string{hf.ConfigName, hf.SafetensorsName, hf.TokenizerJSONName} {
		require.FileExists(t, filepath.Join(hfDir, f))
	}
	again := filepath.Join(t.TempDir(), "reimported.gguf")
	_, _, err = hf.ImportFile(hfDir, again)
	require.NoError(t, err, "the published HF folder imports again")
	requireSameTensors(t, winner, again)
	t.Logf("real-run example end to end in %s (%d train tokens, %d scored, %d held-out)",
		time.Since(began).Round(time.Millisecond), res.TrainTokens, res.ScoredTokens, res.HeldOutTokens)
}

// writeRealRunFiles writes the toy models and data files at the example's
// paths under dir.
func writeRealRunFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := realrun.WriteFiles(dir)
	require.NoError(t, err)
	return files
}

// writeRealRunConfig writes the example with only its paths and sizes
// changed (realrun.ScaleDown) into dir.
func writeRealRunConfig(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	scaled, err := realrun.ScaleDown(data)
	require.NoError(t, err)
	path := filepath.Join(dir, "real-run.yaml")
	require.NoError(t, os.WriteFile(path, scaled, 0o644))
	return path
}

// workflowInput is the input the run was started with, from its history.
func workflowInput(ctx context.Context, t *testing.T, l *local, id string) workflows.EvolutionInput {
	t.Helper()
	it := l.client.GetWorkflowHistory(ctx, id, "", false, 0)
	require.True(t, it.HasNext())
	ev, err := it.Next()
	require.NoError(t, err)
	payloads := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	require.Len(t, payloads, 1)
	var in workflows.EvolutionInput
	require.NoError(t, json.Unmarshal(payloads[0].GetData(), &in))
	return in
}

// requireSameTensors checks that two GGUF files hold the same tensors:
// names, types, shapes and bytes.
func requireSameTensors(t *testing.T, a, b string) {
	t.Helper()
	ga, fa, err := gguf.Open(a)
	require.NoError(t, err)
	defer fa.Close()
	gb, fb, err := gguf.Open(b)
	require.NoError(t, err)
	defer fb.Close()
	require.Equal(t, len(ga.Tensors), len(gb.Tensors))
	for _, ti := range ga.Tensors {
		tj, ok := gb.Tensor(ti.Name)
		require.True(t, ok, "tensor %s is in the re-imported model", ti.Name)
		require.Equal(t, fmt.Sprint(ti.Type, ti.Shape), fmt.Sprint(tj.Type, tj.Shape), "tensor %s", ti.Name)
		da, err := ga.ReadTensor(fa, ti.Name)
		require.NoError(t, err)
		db, err := gb.ReadTensor(fb, ti.Name)
		require.NoError(t, err)
		require.True(t, bytes.Equal(da, db), "tensor %s has the same bytes", ti.Name)
	}
}
