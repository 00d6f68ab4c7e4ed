package workflows

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const replayQueue = "replay"

// replayFiles are the recorded runs of one evolution, in order: the first
// ends in continue-as-new, the second completes.
var replayFiles = []string{"history_gen1_continue_as_new.json", "history_gen2_complete.json"}

// replayConfig is the config the recorded histories were made with.
func replayConfig() RunConfig {
	c := DemoConfig()
	// The demo as it was when the histories were recorded.
	c.Init.Demo.PretrainSteps = 150
	c.Init.Demo.FineTune = FineTuneParams{Method: "full", LR: 2e-3, Steps: 60}
	c.Mutation = Mutation{}
	c.Fitness = Fitness{}
	c.Name = "replay"
	c.Seed = 3
	c.Population = 4
	c.Generations = 2
	p := 1.0
	c.Mutation.Probability = &p
	c.TaskQueues = TaskQueues{CPU: replayQueue, GPU: replayQueue}
	return c
}

// A change to the workflow code that would break running workflows (a new
// activity call, a different order, another random draw) fails here. Make
// such changes behind workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	for _, name := range replayFiles {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Evolution, workflow.RegisterOptions{Name: WorkflowEvolution})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(logger, path))
		})
	}
}

// The recorded histories must keep covering what the replay test is for.
func TestRecordedHistoriesCoverContinueAsNewAndRetry(t *testing.T) {
	first, err := os.ReadFile(filepath.Join("testdata", replayFiles[0]))
	require.NoError(t, err)
	require.Contains(t, string(first), "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW")
	require.Regexp(t, `"attempt":\s*2`, string(first), "a retried activity")
	second, err := os.ReadFile(filepath.Join("testdata", replayFiles[1]))
	require.NoError(t, err)
	require.Contains(t, string(second), "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED")
	require.Contains(t, string(first)+string(second), "Diverged", "a dropped child")
}
