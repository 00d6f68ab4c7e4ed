package workflows_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/workflows"
)

var restartServer = flag.Bool("restart-server", false, "TestExperimentSurvivesACrashMidway also restarts the server")

// A crash mid-experiment: the worker goes down after the first child has
// finished (with -restart-server the server too, restarted on the same
// database: slower, about a minute, as tasks lost with it wait out their
// timeouts); a new worker finishes the experiment with the same table as an
// uninterrupted run, and no finished child runs again.
func TestExperimentSurvivesACrashMidway(t *testing.T) {
	const queue = "experiment-crash"
	e := workflows.TestExperimentConfig()
	e.Name = "crash"
	e.Arms = []string{workflows.ModeEvoMerge, workflows.ModeFineTuneOnly}
	e.Seeds = workflows.Seeds{1, 2}
	e.MaxParallel = 1
	e.Base.TaskQueues = workflows.TaskQueues{CPU: queue, GPU: queue}
	// An activity lost with the server is retried after the heartbeat timeout: keep it short.
	e.Base.Timeouts.Heartbeat = workflows.Duration(10 * time.Second)
	began := time.Now()
	defer func() { t.Logf("crash test took %s", time.Since(began)) }()

	want, err := workflows.RunExperimentInTestEnv(t, e, workflows.NewFakeWorld())
	require.NoError(t, err)

	db := filepath.Join(t.TempDir(), "temporal.db")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := func() (*devserver.Server, client.Client) {
		port, err := devserver.FreePort()
		require.NoError(t, err)
		srv, err := devserver.Start(ctx, devserver.Options{DBPath: db, NoUI: true, Port: port, LogLevel: "error", LogFile: filepath.Join(t.TempDir(), "server.log")})
		require.NoError(t, err)
		c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace()})
		require.NoError(t, err)
		return srv, c
	}
	// The fake world plays the store: it outlives the worker, as a store would.
	fw := workflows.NewFakeWorld()
	newWorker := func(c client.Client) worker.Worker {
		w := worker.New(c, queue, worker.Options{})
		workflows.RegisterWorkflows(w)
		fw.Register(w)
		require.NoError(t, w.Start())
		return w
	}

	srv, c := start()
	w := newWorker(c)
	id := "experiment-crash"
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.WorkflowExperiment, workflows.ExperimentInput{ExperimentConfig: e})
	require.NoError(t, err)
	var mid workflows.ExperimentStatus
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryExperimentStatus)
		return err == nil && v.Get(&mid) == nil && mid.Done >= 1
	}, time.Minute, 20*time.Millisecond)
	require.Less(t, mid.Done, mid.Total, "the crash must come mid-experiment")
	t.Logf("crash after %s", time.Since(began))
	w.Stop()
	if *restartServer {
		c.Close()
		srv.Stop()
		srv, c = start()
	}
	defer srv.Stop()
	defer c.Close()
	w = newWorker(c)
	defer w.Stop()
	t.Logf("restarted after %s", time.Since(began))
	var got workflows.ExperimentResult
	require.NoError(t, c.GetWorkflow(ctx, id, "").Get(ctx, &got))
	t.Logf("finished after %s", time.Since(began))
	require.Equal(t, want.Children, got.Children, "the same table as without the crash")
	require.Equal(t, 1+len(got.Children), fw.Count(workflows.ActivityInitPopulation), "each child started once (and the shared generation 0)")
	require.Equal(t, len(got.Children), fw.Count(workflows.ActivityPublish), "each child finished once")

	// The web UI's search finds the experiment and every child by EvoExperiment.
	require.Eventually(t, func() bool {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf(`%s = "crash" AND ExecutionStatus = "Completed"`, workflows.SearchAttrExperiment)})
		if err != nil {
			return false
		}
		ids := map[string]bool{}
		for _, x := range resp.Executions {
			ids[x.Execution.WorkflowId] = true
		}
		return len(ids) == 1+len(got.Children)
	}, 20*time.Second, 100*time.Millisecond)
}
