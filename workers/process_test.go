package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// TestWorkerProcessRunsAnEvolutionAndStopsOnSIGTERM builds the worker binary,
// runs it as its own process against the embedded server, completes a short
// run through it, then stops it with SIGTERM and expects a clean exit.
func TestWorkerProcessWaitsForTheServerRunsAnEvolutionAndStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "workers")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	port, err := devserver.FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	storeURL := "file://" + filepath.Join(dir, "store")
	// The worker starts before the server (as after a server crash) and must wait for it, not exit.
	address := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--address", address, "--store", storeURL,
		"--queues", "cpu=2,gpu=1", "--threads", "1", "--work-dir", filepath.Join(dir, "work"), "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var mu sync.Mutex
	var messages []string
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			mu.Lock()
			messages = append(messages, fmt.Sprint(e["message"]))
			mu.Unlock()
		}
	}()
	defer cmd.Process.Kill()
	time.Sleep(2 * time.Second)
	srv, err := devserver.Start(ctx, devserver.Options{
		DBPath: filepath.Join(dir, "temporal.db"), Port: port, NoUI: true, LogFile: filepath.Join(dir, "server.log"),
	})
	require.NoError(t, err)
	defer srv.Stop()
	require.Equal(t, address, srv.FrontendAddr())

	// Two tiny models, one generation of merges and evaluations.
	var models []string
	for i := range 3 {
		m, err := llm.NewTiny(llm.Config{Vocab: llm.ByteVocabLen, Dim: 32, Layers: 1, Heads: 2, KVHeads: 1, FFN: 64, Context: 48, RopeBase: 10000, NormEps: 1e-5}, uint64(7+i), llm.Options{Threads: 1})
		require.NoError(t, err)
		p := filepath.Join(dir, fmt.Sprintf("m%d.gguf", i))
		_, err = m.Save(p)
		m.Close()
		require.NoError(t, err)
		models = append(models, p)
	}
	zero := 0.0
	cfg := workflows.RunConfig{
		Name: "proc", Seed: 3, Population: 3, Generations: 1,
		Selection: workflows.Selection{Scheme: workflows.SchemeTruncation, Elitism: 1},
		Crossover: workflows.Crossover{Methods: []workflows.CrossoverMethod{{Name: "linear"}}},
		Mutation:  workflows.Mutation{Probability: &zero},
		Fitness:   workflows.Fitness{HeldOutItems: 2, Tasks: []workflows.TaskSpec{{Family: "comparison", N: 2}}},
		Init:      workflows.Init{Models: models},
	}
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr()})
	require.NoError(t, err)
	defer c.Close()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "proc", TaskQueue: workflows.TaskQueueCPU},
		workflows.WorkflowEvolution, workflows.EvolutionInput{RunConfig: cfg})
	require.NoError(t, err)
	var res workflows.RunResult
	require.NoError(t, run.Get(ctx, &res))

	// The worker process stored the winner where the run says.
	st, err := store.Open(ctx, storeURL, store.Options{})
	require.NoError(t, err)
	ok, err := st.Has(ctx, store.Models, store.Ref(res.Winner.Ref))
	require.NoError(t, err)
	require.True(t, ok)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waitErr := make(chan error, 1)
	go func() { <-scanDone; waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		require.NoError(t, err, "clean exit on SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop within 60s of SIGTERM")
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(messages, "\n")
	require.Contains(t, all, "cannot reach Temporal; retrying")
	require.Contains(t, all, "worker started")
	require.Contains(t, all, "stopped")
}

func TestMain(m *testing.M) {
	// The worker binary is built with the same cgo flags as everything else.
	if os.Getenv("CGO_CFLAGS") == "" {
		os.Setenv("CGO_CFLAGS", "-O3 -march=native")
		os.Setenv("CGO_CXXFLAGS", "-O3 -march=native")
	}
	os.Exit(m.Run())
}
