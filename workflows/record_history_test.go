//go:build recordhistory

package workflows

// Records the histories the replay test replays. Run it only when the
// workflow's recorded behaviour is meant to change (new histories must be
// recorded with the old code first if running workflows have to survive):
//
//	go test -tags recordhistory -run TestRecordHistory ./workflows/
//
// It runs a two-generation evolution on the embedded dev server with the
// fake activities: one evaluation fails once and is retried, one child's
// fine-tune diverges (odd step counts), and the first execution continues as new.

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/evomerge/evomerge/infra/devserver"
)

func TestRecordHistory(t *testing.T) {
	port, err := devserver.FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{DBPath: filepath.Join(t.TempDir(), "temporal.db"), NoUI: true, Port: port, LogLevel: "error"})
	require.NoError(t, err)
	defer srv.Stop()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	defer c.Close()

	fw := newFakeWorld()
	cfg := replayConfig()
	init, _ := newFakeWorld().InitPopulation(ctx, InitPopulationInput{Seed: cfg.Seed, Size: cfg.Population})
	fw.failEvalOnce[init.Members[1].Ref] = true
	fw.diverge = func(p FineTuneParams) bool { return p.Steps%2 == 1 }

	w := worker.New(c, replayQueue, worker.Options{})
	RegisterWorkflows(w)
	fw.register(w)
	require.NoError(t, w.Start())
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "replay-record", TaskQueue: replayQueue},
		WorkflowEvolution, EvolutionInput{RunConfig: cfg})
	require.NoError(t, err)
	firstRunID := run.GetRunID() // Get below moves the handle along the chain
	var res RunResult
	require.NoError(t, run.Get(ctx, &res)) // follows continue-as-new to the last run
	t.Logf("winner #%d fitness %.4f, %d dropped", res.Winner.ID, res.Winner.Fitness, res.Dropped)
	require.Positive(t, res.Dropped, "the history must include a dropped child")

	// Walk the chain of runs from the first one.
	runID := firstRunID
	for i := 1; runID != ""; i++ {
		var events []*historypb.HistoryEvent
		it := c.GetWorkflowHistory(ctx, "replay-record", runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		next := ""
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			events = append(events, ev)
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		require.NoError(t, err)
		path := filepath.Join("testdata", replayFiles[i-1])
		require.NoError(t, os.WriteFile(path+".tmp", data, 0o644))
		require.NoError(t, os.Rename(path+".tmp", path))
		t.Logf("wrote %s (%d events)", path, len(events))
		runID = next
		if i == len(replayFiles) {
			require.Empty(t, next, "more runs than history files")
		}
	}
}
