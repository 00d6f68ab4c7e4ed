package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/hf/hftest"
	"github.com/evomerge/evomerge/internal/store"
)

// A winner published to the store (GGUF plus its HF folder, as the "store"
// publish target writes it) comes back out with `starter pull`, verified, as
// <name>.gguf and <name>-hf/; bad records and corrupt objects are refused and
// leave nothing behind.
func TestPullCopiesPublishedWinnerOut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, _ := fileStore(t)
	folder := hfFolder(t, dir, "tiny-llama", hftest.Default(), nil)
	gguf := filepath.Join(dir, "winner.gguf")
	sum, _, err := hf.ImportFile(folder, gguf)
	require.NoError(t, err)
	model, err := st.PutFile(ctx, store.Models, gguf)
	require.NoError(t, err)
	require.Equal(t, "sha256:"+sum, model.String())
	exported := filepath.Join(dir, "exported")
	require.NoError(t, hf.Export(gguf, exported))
	files, err := os.ReadDir(exported)
	require.NoError(t, err)
	manifest := map[string]string{}
	for _, f := range files {
		r, err := st.PutFile(ctx, store.Blobs, filepath.Join(exported, f.Name()))
		require.NoError(t, err)
		manifest[f.Name()] = r.String()
	}
	publish := func(name string, rec activities.WinnerRecord) {
		b, err := json.Marshal(rec)
		require.NoError(t, err)
		require.NoError(t, st.PutNamed(ctx, store.WinnerName(name), b))
	}
	publish("evo", activities.WinnerRecord{Run: "evo-run", Model: model.String(), HF: manifest})
	pull := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"pull", "--store", st.String()}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}

	outDir := filepath.Join(dir, "pulled")
	out, err := pull("evo", "-o", outDir)
	require.NoError(t, err, out)
	require.Contains(t, out, `winner of run "evo-run"`)
	require.Equal(t, sum, sha(t, filepath.Join(outDir, "evo.gguf")), "the pulled GGUF is the published one")
	for name := range manifest {
		require.Equal(t, sha(t, filepath.Join(exported, name)), sha(t, filepath.Join(outDir, "evo-hf", name)), name)
	}
	back, _, err := hf.ImportFile(filepath.Join(outDir, "evo-hf"), filepath.Join(dir, "back.gguf"))
	require.NoError(t, err)
	require.Equal(t, sum, back, "the pulled HF folder imports to the winner")
	leftovers := func() []string {
		var names []string
		entries, err := os.ReadDir(outDir)
		require.NoError(t, err)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	require.ElementsMatch(t, []string{"evo.gguf", "evo-hf"}, leftovers())

	// Pulling again would overwrite: refused, naming the file.
	out, err = pull("evo", "-o", outDir)
	require.ErrorContains(t, err, filepath.Join(outDir, "evo.gguf")+" already exists", out)

	// A name nobody published.
	_, err = pull("nobody", "-o", outDir)
	require.ErrorContains(t, err, "runs/nobody/winner.json: not in the store")

	// A record whose file names would escape the folder.
	publish("escape", activities.WinnerRecord{Run: "x", Model: model.String(), HF: map[string]string{"../evil": manifest[hf.ConfigName]}})
	_, err = pull("escape", "-o", outDir)
	require.ErrorContains(t, err, `runs/escape/winner.json: field hf: "../evil" is not a plain file name`)

	// A corrupt object in the store: refused, naming the file, and nothing is left behind.
	blob := st.Location(store.Blobs, store.Ref(manifest[hf.ConfigName]))
	require.NoError(t, os.WriteFile(blob, []byte(`{"tampered": true}`), 0o644))
	publish("corrupt", activities.WinnerRecord{Run: "y", Model: model.String(), HF: manifest})
	_, err = pull("corrupt", "-o", outDir)
	require.ErrorContains(t, err, "hf file "+hf.ConfigName)
	require.ElementsMatch(t, []string{"evo.gguf", "evo-hf"}, leftovers())

	// No name.
	_, err = pull("-o", outDir)
	require.ErrorIs(t, err, errUsage)
}
