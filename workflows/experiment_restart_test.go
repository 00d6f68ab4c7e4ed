package workflows_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/workflows"
)

// An experiment that finished, started again under the same workflow ID,
// reuses every finished child (read through the worker's Temporal client)
// instead of failing on "already started" or running it again, and ends
// with the same table.
func TestExperimentRestartedAfterItFinishedReusesItsChildren(t *testing.T) {
	const queue = "experiment-restart"
	e := workflows.TestExperimentConfig()
	e.Name = "restart"
	e.Arms = []string{workflows.ModeEvoMerge, workflows.ModeMergeOnly}
	e.Seeds = workflows.Seeds{1, 2}
	e.Base.TaskQueues = workflows.TaskQueues{CPU: queue, GPU: queue}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port, err := devserver.FreePort()
	require.NoError(t, err)
	srv, err := devserver.Start(ctx, devserver.Options{DBPath: filepath.Join(t.TempDir(), "temporal.db"), NoUI: true, Port: port, LogLevel: "error", LogFile: filepath.Join(t.TempDir(), "server.log")})
	require.NoError(t, err)
	defer srv.Stop()
	quiet := log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace(), Logger: quiet})
	require.NoError(t, err)
	defer c.Close()
	fw := workflows.NewFakeWorld()
	w := worker.New(c, queue, worker.Options{})
	workflows.RegisterWorkflows(w)
	fw.Register(w)
	w.RegisterActivityWithOptions(activities.FinishedRun, activity.RegisterOptions{Name: workflows.ActivityFinishedRun})
	require.NoError(t, w.Start())
	defer w.Stop()

	id := "experiment-restart"
	start := func() workflows.ExperimentResult {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.WorkflowExperiment, workflows.ExperimentInput{ExperimentConfig: e})
		require.NoError(t, err)
		var res workflows.ExperimentResult
		require.NoError(t, run.Get(ctx, &res))
		return res
	}
	first := start()
	require.Zero(t, first.Reused)
	for _, o := range first.Children {
		require.True(t, o.Done, "%s: %s", o.WorkflowID, o.Error)
	}
	published := fw.Count(workflows.ActivityPublish)
	inits := fw.Count(workflows.ActivityInitPopulation)

	again := start()
	require.Equal(t, first.Children, again.Children, "the same table, every child's outcome reused")
	require.Equal(t, len(first.Children), again.Reused)
	require.Equal(t, published, fw.Count(workflows.ActivityPublish), "no child ran again")
	require.Equal(t, inits+1, fw.Count(workflows.ActivityInitPopulation), "only the shared generation 0 is asked for again (memoised in a real store)")
}
