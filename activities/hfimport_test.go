package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/hf/hftest"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/internal/store/s3test"
	"github.com/evomerge/evomerge/workflows"
)

// TestInitPopulationFromHFFolders: folders are converted once (memoised by their files' hashes), the
// winner is published as GGUF and as an HF folder, and an architecture the engine lacks is refused
// naming the model and its architectures value.
func TestInitPopulationFromHFFolders(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var dirs []string
	for i, arch := range []string{"LlamaForCausalLM", "MistralForCausalLM"} {
		o := hftest.Default()
		o.Architecture, o.Seed = arch, uint64(i+1)
		d := filepath.Join(f.dir, "hf", arch)
		require.NoError(t, hftest.Write(d, o))
		dirs = append(dirs, d)
	}
	in := workflows.InitPopulationInput{Run: "r", Size: 2, Models: []string{dirs[0], "file://" + dirs[1]}}
	out, err := f.acts.InitPopulation(ctx, in)
	require.NoError(t, err)
	require.Len(t, out.Members, 2)
	require.NotEqual(t, out.Members[0].Ref, out.Members[1].Ref)
	again, err := f.acts.InitPopulation(ctx, in)
	require.NoError(t, err)
	require.Equal(t, out.Members, again.Members)
	memos, err := f.st.ListNamed(ctx, store.MemoPrefix+"hf-import/")
	require.NoError(t, err)
	require.Len(t, memos, 2)

	// Publish to a path: the GGUF and, beside it, an HF folder that imports back to the same bytes.
	target := filepath.Join(f.dir, "out", "winner.gguf")
	_, err = f.acts.Publish(ctx, workflows.PublishInput{Run: "r", Model: out.Members[0].Ref, Target: workflows.PublishTarget{Kind: "path", Path: target}})
	require.NoError(t, err)
	require.True(t, hf.IsFolder(filepath.Join(f.dir, "out", "winner-hf")))
	back := filepath.Join(f.dir, "back.gguf")
	sum, _, err := hf.ImportFile(filepath.Join(f.dir, "out", "winner-hf"), back)
	require.NoError(t, err)
	require.Equal(t, out.Members[0].Ref, "sha256:"+sum)

	// Publish to the store: winner.json names the GGUF and the HF folder's files, stored by content;
	// the files put together import back to the same bytes.
	for range 2 { // a second publish is the same
		_, err = f.acts.Publish(ctx, workflows.PublishInput{Run: "r", Model: out.Members[1].Ref, Target: workflows.PublishTarget{Kind: "store"}})
		require.NoError(t, err)
	}
	b, err := f.st.GetNamed(ctx, store.WinnerName("r"))
	require.NoError(t, err)
	var w WinnerRecord
	require.NoError(t, json.Unmarshal(b, &w))
	require.Equal(t, out.Members[1].Ref, w.Model)
	for _, name := range []string{hf.ConfigName, hf.SafetensorsName, hf.TokenizerJSONName, hf.TokenizerConfigName} {
		require.Contains(t, w.HF, name)
	}
	pulled := filepath.Join(f.dir, "pulled")
	require.NoError(t, os.MkdirAll(pulled, 0o755))
	for name, ref := range w.HF {
		l, err := f.st.Fetch(ctx, store.Blobs, store.Ref(ref))
		require.NoError(t, err)
		data, err := os.ReadFile(l.Path)
		l.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(pulled, name), data, 0o644))
	}
	sum, _, err = hf.ImportFile(pulled, filepath.Join(f.dir, "pulled.gguf"))
	require.NoError(t, err)
	require.Equal(t, out.Members[1].Ref, "sha256:"+sum)

	// An unsupported architecture is refused, naming the model and its architectures value.
	bad := filepath.Join(f.dir, "hf", "gemma")
	require.NoError(t, hftest.Write(bad, hftest.Default()))
	cfgPath := filepath.Join(bad, hf.ConfigName)
	b, _ = os.ReadFile(cfgPath)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	c["architectures"] = []string{"GemmaForCausalLM"}
	b, _ = json.Marshal(c)
	require.NoError(t, os.WriteFile(cfgPath, b, 0o644))
	_, err = f.acts.InitPopulation(ctx, workflows.InitPopulationInput{Run: "r", Size: 2, Models: []string{dirs[0], bad}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "models[1]")
	require.Contains(t, err.Error(), bad)
	require.Contains(t, err.Error(), "GemmaForCausalLM")
}

// editConfig rewrites keys of a folder's config.json.
func editConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	require.NoError(t, hftest.EditConfig(dir, edit))
}

// A run started with `temporal workflow start` skips the starter's checks: InitPopulation refuses the
// same folders with a non-retryable BadInput error carrying the same message.
func TestInitPopulationRefusesBadHFFolderNonRetryably(t *testing.T) {
	f := newFixture(t)
	good := filepath.Join(f.dir, "hf", "good")
	require.NoError(t, hftest.Write(good, hftest.Default()))
	for _, c := range []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"gemma", func(c map[string]any) { c["architectures"] = []string{"GemmaForCausalLM"} }, `config.json key architectures = ["GemmaForCausalLM"]`},
		{"shape", func(c map[string]any) { c["intermediate_size"] = 64 }, "mlp.gate_proj.weight has shape [48 32], but config.json implies [64 32]"},
	} {
		d := filepath.Join(f.dir, "hf", c.name)
		require.NoError(t, hftest.Write(d, hftest.Default()))
		editConfig(t, d, c.edit)
		_, err := f.env.ExecuteActivity(workflows.ActivityInitPopulation, workflows.InitPopulationInput{Run: "r", Size: 2, Models: []string{good, d}})
		requireAppError(t, err, workflows.ErrTypeBadInput, "models[1] "+d+": hf: model "+d+": ")
		requireAppError(t, err, workflows.ErrTypeBadInput, c.want)
	}
}

// HF folders uploaded under s3:// prefixes of a real S3 server (the store on the same server) are
// imported as the same GGUF a local import makes; a bad one is refused naming the prefix, not the
// worker's download directory.
func TestInitPopulationFromS3HFFolders(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	st, err := store.Open(ctx, srv.StoreURL("acts"), store.Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	work := t.TempDir()
	acts, err := New(Config{Store: st, WorkDir: work, Threads: 1})
	require.NoError(t, err)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts.Register(env)

	dir := t.TempDir()
	var prefixes, sums []string
	for i, shards := range []int{1, 2} {
		o := hftest.Default()
		o.Seed, o.Shards = uint64(i+1), shards
		d := filepath.Join(dir, fmt.Sprintf("m%d", i)) // named as its prefix: the GGUF carries the name
		require.NoError(t, hftest.Write(d, o))
		require.NoError(t, srv.PutDir(ctx, fmt.Sprintf("models/m%d/", i), d))
		prefixes = append(prefixes, srv.URL(fmt.Sprintf("models/m%d/", i)))
		sum, _, err := hf.ImportFile(d, filepath.Join(dir, fmt.Sprintf("%d.gguf", i)))
		require.NoError(t, err)
		sums = append(sums, "sha256:"+sum)
	}
	var out workflows.InitPopulationOutput
	run(t, env, workflows.ActivityInitPopulation, &out, workflows.InitPopulationInput{Run: "r", Size: 2, Models: prefixes})
	require.Len(t, out.Members, 2)
	require.Equal(t, sums, []string{out.Members[0].Ref, out.Members[1].Ref})
	ok, err := st.Has(ctx, store.Models, store.Ref(sums[1]))
	require.NoError(t, err)
	require.True(t, ok)

	bad := filepath.Join(dir, "bad")
	require.NoError(t, hftest.Write(bad, hftest.Default()))
	editConfig(t, bad, func(c map[string]any) { c["architectures"] = []string{"GemmaForCausalLM"} })
	require.NoError(t, srv.PutDir(ctx, "models/bad/", bad))
	_, err = env.ExecuteActivity(workflows.ActivityInitPopulation, workflows.InitPopulationInput{Run: "r", Size: 2,
		Models: []string{prefixes[0], srv.URL("models/bad/")}})
	requireAppError(t, err, workflows.ErrTypeBadInput, "models[1] "+srv.URL("models/bad/")+": hf: model s3://evomerge/models/bad: ")
	requireAppError(t, err, workflows.ErrTypeBadInput, "GemmaForCausalLM")
	require.NotContains(t, err.Error(), work)

	// A prefix without a folder.
	_, err = env.ExecuteActivity(workflows.ActivityInitPopulation, workflows.InitPopulationInput{Run: "r", Size: 2,
		Models: []string{prefixes[0], srv.URL("models/none/")}})
	requireAppError(t, err, workflows.ErrTypeBadInput, "config.json is missing")
}
