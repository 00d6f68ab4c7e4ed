package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/llm"
)

// `starter merge` (the project's one merge command) runs a mergekit YAML over
// GGUF files and writes a model llm loads.
func TestMergeCommand(t *testing.T) {
	d := t.TempDir()
	cfg := llm.ByteLlamaConfig(1, 32, 2, 1, 64, 32)
	for i, name := range []string{"a.gguf", "b.gguf"} {
		m, err := llm.NewTiny(cfg, uint64(i+1), llm.Options{Threads: 1})
		require.NoError(t, err)
		_, err = m.Save(filepath.Join(d, name))
		m.Close()
		require.NoError(t, err)
	}
	yaml := filepath.Join(d, "merge.yaml")
	require.NoError(t, os.WriteFile(yaml, []byte("merge_method: linear\nmodels:\n  - model: a.gguf\n    parameters: {weight: 0.5}\n  - model: b.gguf\n    parameters: {weight: 0.5}\n"), 0o644))
	out := filepath.Join(d, "child.gguf")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"merge", "-c", yaml, "-o", out, "-q", "--threads", "1", "--seed", "3"}, &stdout, &stderr), stderr.String())
	require.True(t, strings.Contains(stdout.String(), "sha256:"), stdout.String())
	require.Empty(t, stderr.String(), "-q: no progress")
	m, err := llm.Load(out, llm.Options{Threads: 1})
	require.NoError(t, err)
	m.Close()

	err = run(context.Background(), []string{"merge", "-c", yaml}, &stdout, &stderr)
	require.ErrorContains(t, err, "merge needs -c config.yaml -o out.gguf")
}
