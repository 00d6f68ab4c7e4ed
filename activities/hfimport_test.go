package activities

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/hf/hftest"
	"github.com/evomerge/evomerge/internal/store"
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

	// An unsupported architecture is refused, naming the model and its architectures value.
	bad := filepath.Join(f.dir, "hf", "gemma")
	require.NoError(t, hftest.Write(bad, hftest.Default()))
	cfgPath := filepath.Join(bad, hf.ConfigName)
	b, _ := os.ReadFile(cfgPath)
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
