package workflows_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/infra/devserver"
	"github.com/evomerge/evomerge/internal/store"
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
	fw.UseRealReports()
	w := worker.New(c, queue, worker.Options{})
	workflows.RegisterWorkflows(w)
	fw.Register(w)
	w.RegisterActivityWithOptions(activities.FinishedRun, activity.RegisterOptions{Name: workflows.ActivityFinishedRun})
	// The real report writer, on a file store: the memo links the rendered HTML by its path.
	st, err := store.Open(ctx, t.TempDir(), store.Options{})
	require.NoError(t, err)
	acts, err := activities.New(activities.Config{Store: st, WorkDir: t.TempDir()})
	require.NoError(t, err)
	w.RegisterActivityWithOptions(acts.WriteReport, activity.RegisterOptions{Name: workflows.ActivityWriteReport})
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
	// The experiment's and every child's memo and current details link the
	// stored report, and the object is the rendered HTML with its plots.
	for _, wid := range append([]string{id}, first.Children[0].WorkflowID, first.Children[3].WorkflowID) {
		d, err := c.DescribeWorkflowExecution(ctx, wid, "")
		require.NoError(t, err)
		p, ok := d.GetWorkflowExecutionInfo().GetMemo().GetFields()[workflows.MemoReport]
		require.True(t, ok, "%s: no report in the memo", wid)
		var link string
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &link))
		require.True(t, filepath.IsAbs(link), "%s: %q", wid, link)
		require.Contains(t, link, "/reports/")
		html, err := os.ReadFile(link)
		require.NoError(t, err)
		require.Contains(t, string(html), "<html")
		require.Contains(t, string(html), "data:image/png;base64,", "the plots are embedded")
		v, err := c.QueryWorkflow(ctx, wid, "", "__temporal_workflow_metadata")
		require.NoError(t, err)
		var meta sdkpb.WorkflowMetadata
		require.NoError(t, v.Get(&meta))
		require.Contains(t, meta.GetCurrentDetails(), "report: ["+link+"](file://"+link+")", wid)
		if wid == id {
			require.Equal(t, link, first.Report)
			require.Contains(t, string(html), "restart")
		}
	}
	published := fw.Count(workflows.ActivityPublish)
	inits := fw.Count(workflows.ActivityInitPopulation)

	again := start()
	require.Equal(t, first.Children, again.Children, "the same table, every child's outcome reused")
	require.Equal(t, len(first.Children), again.Reused)
	require.Equal(t, published, fw.Count(workflows.ActivityPublish), "no child ran again")
	require.Equal(t, inits+1, fw.Count(workflows.ActivityInitPopulation), "only the shared generation 0 is asked for again (memoised in a real store)")
}
