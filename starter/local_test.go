package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/workflows"
)

// The CLI against the embedded server with the real activities on tiny
// models: start a two-generation run and watch it to the end, look at it with
// status and report, then stop a second run after its first generation.
func TestCLIRunsEvolutionOnEmbeddedServerWithRealActivities(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models (about a minute)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	port, err := devserver.FreePort()
	require.NoError(t, err)
	l, err := startLocal(ctx, quickstartFlags{dir: dir, port: port, noUI: true, threads: 1},
		workflows.TaskQueues{CPU: workflows.TaskQueueCPU, GPU: workflows.TaskQueueGPU}, io.Discard)
	require.NoError(t, err)
	defer l.Close()
	addr := l.srv.FrontendAddr()

	winnerPath := filepath.Join(dir, "winner.gguf")
	config := func(name string, generations int, lineage string) string {
		return writeFile(t, name+".yaml", `
name: `+name+`
seed: 5
population: 4
generations: `+string(rune('0'+generations))+`
init:
  continue_lineage: "`+lineage+`"
  demo:
    pretrain_steps: 30
    fine_tune: {steps: 15}
mutation:
  steps: {min: 4, max: 8}
fitness:
  tasks: [{family: addition, items: 12}, {family: comparison, items: 12}]
  held_out_items: 12
publish: {kind: path, path: `+winnerPath+`}
`)
	}
	cli := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append(args, "--address", addr), &out, &errb)
		return out.String() + errb.String(), err
	}

	out, err := cli("start", "-f", config("itest", 2, ""), "--watch")
	require.NoError(t, err, out)
	require.Contains(t, out, "run itest finished: completed 2 generations")
	require.Regexp(t, `(?m)^\s+2\s+\d\.\d{4}\s+#\d+`, out, "a table row for generation 2")
	m := regexp.MustCompile(`winner #\d+\s+fitness \S+\s+sha256:([0-9a-f]{64})`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	data, err := os.ReadFile(winnerPath)
	require.NoError(t, err, "the winner is published to the configured path")
	sum := sha256.Sum256(data)
	require.Equal(t, m[1], hex.EncodeToString(sum[:]), "the published file is the winner, byte for byte")
	require.Contains(t, out, "held-out: winner ")

	out, err = cli("status", "evo-itest")
	require.NoError(t, err, out)
	require.Contains(t, out, "run evo-itest: completed")
	require.Contains(t, out, "leaderboard:")

	out, err = cli("report", "evo-itest", "--ui", "")
	require.NoError(t, err, out)
	require.Contains(t, out, "winner's ancestry:")

	// A schedule continuing the lineage: created, listed, deleted.
	out, err = cli("schedule", "create", "-f", config("itest", 2, ""), "--every", "24h", "--paused")
	require.NoError(t, err, out)
	require.Contains(t, out, `continuing lineage "itest"`)
	// Schedules are listed through Temporal's visibility store, which lags a create by a moment under load.
	listed := regexp.MustCompile(`itest-schedule\s+paused\s+every 24h0m0s`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err = cli("schedule", "list")
		if err == nil && listed.MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("schedule list never showed itest-schedule: %v\n%s", err, out)
		}
	}
	out, err = cli("schedule", "delete", "itest-schedule")
	require.NoError(t, err, out)

	// A second, longer run continues the first run's lineage (its published
	// population) and is stopped through the update; it ends cleanly.
	out, err = cli("start", "-f", config("itest-stop", 5, "itest"))
	require.NoError(t, err, out)
	out, err = cli("stop", "evo-itest-stop", "--reason", "enough for the test")
	require.NoError(t, err, out)
	require.Contains(t, out, "run evo-itest-stop stops after generation")
	out, err = cli("watch", "evo-itest-stop")
	require.NoError(t, err, out)
	require.Contains(t, out, "finished: enough for the test")
	// The stop lands during generation 0 or 1; the run ends after that one.
	require.NotContains(t, out, "\n    2  ", "no generation after the stop")
	out, err = cli("status", "evo-itest-stop")
	require.NoError(t, err, out)
	require.Contains(t, out, "lineage itest (run itest) #", "generation 0 came from the published lineage")
}
