package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

func TestParseQueues(t *testing.T) {
	qs, err := ParseQueues(" cpu=3, gpu ")
	require.NoError(t, err)
	require.Equal(t, []Queue{{"cpu", 3}, {"gpu", 1}}, qs)
	for _, bad := range []string{"", ",", "cpu=x", "=2", "cpu,cpu", "gpu=0"} {
		_, err := ParseQueues(bad)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "queues", bad)
	}
}

var tinyCfg = llm.Config{Vocab: llm.ByteVocabLen, Dim: 32, Layers: 1, Heads: 2, KVHeads: 1, FFN: 64, Context: 48, RopeBase: 10000, NormEps: 1e-5}

// tinyModels writes n random tiny llamas (the initial population).
func tinyModels(t *testing.T, n int) []string {
	var paths []string
	for i := range n {
		m, err := llm.NewTiny(tinyCfg, uint64(100+i), llm.Options{Threads: 1})
		require.NoError(t, err)
		p := filepath.Join(t.TempDir(), fmt.Sprintf("m%d.gguf", i))
		_, err = m.Save(p)
		m.Close()
		require.NoError(t, err)
		paths = append(paths, p)
	}
	return paths
}

// runConfig is a small run on imported models: merges and evaluations only
// (no fine-tunes), so it needs no training engine.
func runConfig(name string, models []string, generations int, publish string) workflows.RunConfig {
	zero := 0.0
	return workflows.RunConfig{
		Name: name, Seed: 11, Population: len(models), Generations: generations, Parallelism: 2,
		Selection: workflows.Selection{Scheme: workflows.SchemeTournament, Elitism: 1},
		Crossover: workflows.Crossover{Methods: []workflows.CrossoverMethod{{Name: "linear"}, {Name: "slerp"}}},
		Mutation:  workflows.Mutation{Probability: &zero},
		Fitness: workflows.Fitness{Suite: "synth", HeldOutItems: 4, Tasks: []workflows.TaskSpec{
			{Family: "comparison", N: 4}, {Family: "addition", N: 4},
		}},
		Init:    workflows.Init{Models: models},
		Publish: &workflows.PublishTarget{Kind: "path", Path: publish},
	}
}

type harness struct {
	srv *devserver.Server
	c   client.Client
	st  *store.Store
}

func startHarness(t *testing.T) *harness {
	t.Helper()
	port, err := devserver.FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		DBPath: filepath.Join(t.TempDir(), "temporal.db"), Port: port, NoUI: true,
		LogFile: filepath.Join(t.TempDir(), "server.log"),
	})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	st, err := store.Open(ctx, "file://"+filepath.Join(t.TempDir(), "store"), store.Options{})
	require.NoError(t, err)
	acts, err := activities.New(activities.Config{Store: st, WorkDir: t.TempDir(), Threads: 1})
	require.NoError(t, err)
	p, err := Start(c, Config{
		Queues:     []Queue{{workflows.TaskQueueCPU, 2}, {workflows.TaskQueueGPU, 1}},
		Activities: acts, Workflows: true,
	})
	require.NoError(t, err)
	t.Cleanup(p.Stop)
	return &harness{srv: srv, c: c, st: st}
}

func (h *harness) checkResult(t *testing.T, res workflows.RunResult, generations int, published string) {
	t.Helper()
	require.Equal(t, generations+1, len(res.History), "generation 0 plus one row per generation")
	require.NotEmpty(t, res.Winner.Ref)
	ok, err := h.st.Has(context.Background(), store.Models, store.Ref(res.Winner.Ref))
	require.NoError(t, err)
	require.True(t, ok, "winner in the store")
	got, _, err := store.HashFile(published)
	require.NoError(t, err)
	require.Equal(t, res.Winner.Ref, got.String(), "published file is the winner")
	// Nothing corrupt or half-written in the store.
	rep, err := h.st.Verify(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
}

// TestEvolutionOnEmbeddedServer runs two generations with the real
// activities on tiny models, through the embedded server and this pool.
func TestEvolutionOnEmbeddedServer(t *testing.T) {
	h := startHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "winner.gguf")
	run, err := h.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "pool-it", TaskQueue: workflows.TaskQueueCPU},
		workflows.WorkflowEvolution, workflows.EvolutionInput{RunConfig: runConfig("pool-it", tinyModels(t, 4), 2, out)})
	require.NoError(t, err)
	var res workflows.RunResult
	require.NoError(t, run.Get(ctx, &res))
	h.checkResult(t, res, 2, out)

	// The lineage was recorded for a later run to continue.
	_, err = h.st.GetNamed(ctx, "lineages/pool-it/population.json")
	require.NoError(t, err)
}

// TestTemporalCLIStartsARun starts the workflow the way users do, with the
// Temporal CLI and a JSON file, against the embedded server.
func TestTemporalCLIStartsARun(t *testing.T) {
	cli := temporalCLI(t)
	h := startHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "winner.gguf")
	cfg, err := json.Marshal(runConfig("cli-run", tinyModels(t, 3), 1, out))
	require.NoError(t, err)
	input := filepath.Join(t.TempDir(), "run.json")
	require.NoError(t, os.WriteFile(input, cfg, 0o644))

	cmd := exec.CommandContext(ctx, cli, "workflow", "start",
		"--address", h.srv.FrontendAddr(), "--namespace", h.srv.Namespace(),
		"--type", workflows.WorkflowEvolution, "--task-queue", workflows.TaskQueueCPU,
		"--workflow-id", "cli-run", "--input-file", input)
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	require.NoError(t, cmd.Run(), outb.String())

	var res workflows.RunResult
	require.NoError(t, h.c.GetWorkflow(ctx, "cli-run", "").Get(ctx, &res))
	h.checkResult(t, res, 1, out)
}

// temporalCLIVersion builds against the embedded 1.32 server's API.
const temporalCLIVersion = "v1.5.1"

var cliOnce struct {
	sync.Once
	path string
	err  error
}

// temporalCLI returns the temporal CLI: $EVOMERGE_TEMPORAL_CLI, or a build
// cached under ~/.cache/evomerge/bin (made on first use from the module proxy).
func temporalCLI(t *testing.T) string {
	cliOnce.Do(func() {
		if p := os.Getenv("EVOMERGE_TEMPORAL_CLI"); p != "" {
			cliOnce.path = p
			return
		}
		home, err := os.UserHomeDir()
		if err != nil {
			cliOnce.err = err
			return
		}
		bin := filepath.Join(home, ".cache", "evomerge", "bin")
		path := filepath.Join(bin, "temporal")
		if _, err := os.Stat(path); err == nil {
			cliOnce.path = path
			return
		}
		if err := os.MkdirAll(bin, 0o755); err != nil {
			cliOnce.err = err
			return
		}
		// Build beside the target so the final rename is atomic.
		tmp, err := os.MkdirTemp(bin, ".build-")
		if err != nil {
			cliOnce.err = err
			return
		}
		defer os.RemoveAll(tmp)
		cmd := exec.Command("go", "install", "github.com/temporalio/cli/cmd/temporal@"+temporalCLIVersion)
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			cliOnce.err = fmt.Errorf("go install temporal CLI %s: %v\n%s", temporalCLIVersion, err, out)
			return
		}
		if err := os.Rename(filepath.Join(tmp, "temporal"), path); err != nil {
			cliOnce.err = err
			return
		}
		cliOnce.path = path
	})
	require.NoError(t, cliOnce.err)
	return cliOnce.path
}
