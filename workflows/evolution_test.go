package workflows

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// quietSuite logs only warnings and errors so test output stays readable.
func quietSuite() *testsuite.WorkflowTestSuite {
	s := &testsuite.WorkflowTestSuite{}
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))))
	return s
}

func testConfig() RunConfig {
	c := DemoConfig()
	c.Fitness, c.Mutation = Fitness{}, Mutation{} // the defaults the expectations below were computed with
	c.Name = "test-run"
	c.Population = 6
	c.Generations = 3
	c.Seed = 7
	return c
}

type runOutcome struct {
	result     *RunResult
	executions int
	last       *testsuite.TestWorkflowEnvironment
	inputs     []EvolutionInput // input of each execution
}

// runToEnd executes the workflow, following continue-as-new by decoding the
// next input from the payload exactly as the server would hand it over.
func runToEnd(t *testing.T, cfg RunConfig, w *fakeWorld, setup func(env *testsuite.TestWorkflowEnvironment, execution int)) runOutcome {
	t.Helper()
	s := quietSuite()
	in := EvolutionInput{RunConfig: cfg}
	var out runOutcome
	for exec := 1; exec <= 50; exec++ {
		env := s.NewTestWorkflowEnvironment()
		env.SetStartTime(time.Date(2026, 1, 2, 3, 0, exec, 0, time.UTC))
		env.RegisterWorkflowWithOptions(Evolution, workflow.RegisterOptions{Name: WorkflowEvolution})
		w.register(env)
		if setup != nil {
			setup(env, exec)
		}
		out.inputs = append(out.inputs, in)
		env.ExecuteWorkflow(WorkflowEvolution, in)
		require.True(t, env.IsWorkflowCompleted())
		out.executions, out.last = exec, env
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			require.Equal(t, WorkflowEvolution, can.WorkflowType.Name)
			var next EvolutionInput
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
			require.NotNil(t, next.State, "continue-as-new must carry the run state")
			in = next
			continue
		}
		require.NoError(t, err)
		var res RunResult
		require.NoError(t, env.GetWorkflowResult(&res))
		out.result = &res
		return out
	}
	t.Fatal("workflow did not finish within 50 executions")
	return out
}

func TestEvolutionRunsGenerationsWithContinueAsNew(t *testing.T) {
	w := newFakeWorld()
	cfg := testConfig()
	out := runToEnd(t, cfg, w, nil)
	res := out.result

	// One execution per generation: gens 1 and 2 continue as new, gen 3 finishes.
	require.Equal(t, 3, out.executions)
	require.Equal(t, 2, out.inputs[2].State.Generation)
	require.Equal(t, "completed 3 generations", res.StopReason)
	require.Len(t, res.History, 4)
	require.Equal(t, 1, w.count(ActivityInitPopulation), "the population is created once, not per execution")
	require.Equal(t, 1, w.count(ActivityPublish))
	children := cfg.WithDefaults().Children
	require.Equal(t, 3*children, w.count(ActivityMerge))

	// Elitism keeps the best, so the best fitness never decreases; the fake
	// world rewards merging specialists, so evolution must improve on gen 0.
	for i := 1; i < len(res.History); i++ {
		require.GreaterOrEqual(t, res.History[i].Best, res.History[i-1].Best, "generation %d", i)
		require.Equal(t, res.History[0].Best, res.History[i].BestInitial)
	}
	require.Greater(t, res.Winner.Fitness, res.History[0].Best)
	require.True(t, res.HeldOut.Beat)
	require.Equal(t, "store:runs/test-run/winner.gguf", res.Published)

	// Publish records the lineage's last population, best first.
	pub := w.publishedInput
	require.NotNil(t, pub)
	require.Equal(t, "test-run", pub.Lineage)
	require.Len(t, pub.Population, cfg.Population)
	require.Equal(t, res.Winner.Ref, pub.Population[0].Ref)
	require.NotEmpty(t, pub.Base)

	// Queries on the final execution.
	var status Status
	v, err := out.last.QueryWorkflow(QueryStatus)
	require.NoError(t, err)
	require.NoError(t, v.Get(&status))
	require.Equal(t, 3, status.Generation)
	require.Equal(t, res.Winner.ID, status.Best.ID)
	require.Len(t, status.History, 4)

	var board []Node
	v, err = out.last.QueryWorkflow(QueryLeaderboard)
	require.NoError(t, err)
	require.NoError(t, v.Get(&board))
	require.Len(t, board, cfg.Population)
	for i := 1; i < len(board); i++ {
		require.GreaterOrEqual(t, board[i-1].Fitness, board[i].Fitness)
	}

	var lineage []Node
	v, err = out.last.QueryWorkflow(QueryLineage)
	require.NoError(t, err)
	require.NoError(t, v.Get(&lineage))
	require.Len(t, lineage, cfg.Population+3*children)
	for _, n := range lineage {
		require.NotEmpty(t, n.Op)
		if n.Generation > 0 {
			require.Len(t, n.Parents, 2)
			require.Contains(t, n.Op, "merge ")
			for _, p := range n.Parents {
				require.Less(t, lineage[p].Generation, n.Generation, "parents come from earlier generations")
			}
		}
	}
	alive := 0
	for _, n := range lineage {
		if n.Status == StatusAlive {
			alive++
		}
	}
	require.Equal(t, cfg.Population, alive)
}

func TestEvolutionSameSeedSameRun(t *testing.T) {
	cfg := testConfig()
	a := runToEnd(t, cfg, newFakeWorld(), nil)
	b := runToEnd(t, cfg, newFakeWorld(), nil)
	ja, _ := json.Marshal(a.inputs[len(a.inputs)-1].State)
	jb, _ := json.Marshal(b.inputs[len(b.inputs)-1].State)
	require.JSONEq(t, string(ja), string(jb))
	require.Equal(t, a.result.Winner, b.result.Winner)

	cfg.Seed = 8
	c := runToEnd(t, cfg, newFakeWorld(), nil)
	jc, _ := json.Marshal(c.inputs[len(c.inputs)-1].State)
	require.NotEqual(t, string(ja), string(jc), "a different seed must give a different run")
}

func TestEvolutionStopSignalEndsAfterCurrentGeneration(t *testing.T) {
	w := newFakeWorld()
	cfg := testConfig()
	cfg.Generations = 5
	var env *testsuite.TestWorkflowEnvironment
	w.onMerge = func(n int) {
		if n == 2 { // in the middle of generation 1
			env.SignalWorkflow(SignalStop, "operator asked")
		}
	}
	out := runToEnd(t, cfg, w, func(e *testsuite.TestWorkflowEnvironment, _ int) { env = e })
	require.Equal(t, 1, out.executions, "a stopped run does not continue as new")
	require.Equal(t, "operator asked", out.result.StopReason)
	require.Len(t, out.result.History, 2, "generation 1 completes before the run ends")
	require.Equal(t, cfg.WithDefaults().Children, w.count(ActivityMerge))
	require.Equal(t, 1, w.count(ActivityPublish), "a stopped run still publishes its best model")
}

func TestEvolutionStopUpdate(t *testing.T) {
	w := newFakeWorld()
	cfg := testConfig()
	cfg.Generations = 5
	var env *testsuite.TestWorkflowEnvironment
	var got Status
	var updErr error
	accepted := false
	w.onMerge = func(n int) {
		if n == 1 {
			env.UpdateWorkflow(UpdateStop, "stop-1", &testsuite.TestUpdateCallback{
				OnAccept:   func() { accepted = true },
				OnReject:   func(err error) { updErr = err },
				OnComplete: func(v any, err error) { updErr = err; got, _ = v.(Status) },
			}, "")
		}
	}
	out := runToEnd(t, cfg, w, func(e *testsuite.TestWorkflowEnvironment, _ int) { env = e })
	require.NoError(t, updErr)
	require.True(t, accepted)
	require.True(t, got.Stopping)
	require.Equal(t, "stop requested", got.StopReason)
	require.Equal(t, 1, got.Generation, "the update answers with the status of the generation in progress")
	require.Equal(t, 1, out.executions)
	require.Equal(t, "stop requested", out.result.StopReason)
}

func TestEvolutionDropsDivergedChildrenAndGoesOn(t *testing.T) {
	w := newFakeWorld()
	w.diverge = func(p FineTuneParams) bool { return p.Dataset == "reversal" }
	cfg := testConfig()
	p := 1.0
	cfg.Mutation.Probability = &p
	out := runToEnd(t, cfg, w, nil)
	final := out.inputs[len(out.inputs)-1].State
	dropped := 0
	for _, n := range final.Nodes {
		if n.Status == StatusDropped {
			dropped++
			require.True(t, strings.HasPrefix(n.Reason, "fine-tune diverged: Diverged: loss became NaN"), n.Reason)
			require.Contains(t, n.Op, "on reversal")
		}
	}
	require.Positive(t, dropped, "some children fine-tuned on reversal must have been dropped")
	require.Equal(t, "completed 3 generations", out.result.StopReason)
	require.GreaterOrEqual(t, out.result.Dropped, dropped)
}

func TestEvolutionRetriesFailedEvaluation(t *testing.T) {
	w := newFakeWorld()
	cfg := testConfig()
	cfg.Generations = 1
	// Make the first evaluation of every initial member fail once.
	init, _ := newFakeWorld().InitPopulation(nil, InitPopulationInput{Seed: cfg.Seed, Size: cfg.Population})
	for _, m := range init.Members {
		w.failEvalOnce[m.Ref] = true
	}
	out := runToEnd(t, cfg, w, nil)
	require.Len(t, out.result.History, 2)
	require.Equal(t, 0, out.result.Dropped)
}

func TestEvolutionRejectsBadConfigNamingTheField(t *testing.T) {
	s := quietSuite()
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Evolution, workflow.RegisterOptions{Name: WorkflowEvolution})
	cfg := testConfig()
	cfg.Selection.Elitism = 6
	env.ExecuteWorkflow(WorkflowEvolution, EvolutionInput{RunConfig: cfg})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.Equal(t, ErrTypeInvalidConfig, app.Type())
	require.True(t, app.NonRetryable())
	require.Contains(t, err.Error(), "selection.elitism: must be less than population (6), got 6")
}

func TestEvolutionUpsertsSearchAttributes(t *testing.T) {
	w := newFakeWorld()
	cfg := testConfig()
	cfg.Generations = 1
	var seen []map[string]any
	out := runToEnd(t, cfg, w, func(env *testsuite.TestWorkflowEnvironment, _ int) {
		env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
			sa := args.Get(0).(temporal.SearchAttributes)
			m := map[string]any{}
			if v, ok := sa.GetKeyword(SearchRun); ok {
				m[SearchAttrRun] = v
			}
			if v, ok := sa.GetInt64(SearchGeneration); ok {
				m[SearchAttrGeneration] = v
			}
			if v, ok := sa.GetFloat64(SearchBestFitness); ok {
				m[SearchAttrBestFitness] = v
			}
			seen = append(seen, m)
		}).Return(nil)
	})
	require.NotEmpty(t, seen)
	last := seen[len(seen)-1]
	require.Equal(t, "test-run", last[SearchAttrRun])
	require.Equal(t, int64(1), last[SearchAttrGeneration])
	require.InDelta(t, out.result.History[1].Best, last[SearchAttrBestFitness], 1e-12)
}

func TestEvolutionStopsCleanlyAtABudget(t *testing.T) {
	cfg := testConfig()
	cfg.Generations = 10
	// Generation 0 evaluates 6 models × 4 tasks × 32 items = 768 items; one
	// generation of 4 children adds 512, so the budget is reached after it.
	cfg.Budgets.EvalItems = 1000
	w := newFakeWorld()
	out := runToEnd(t, cfg, w, nil)
	require.Equal(t, "evaluation budget 1000 items reached (1280 used)", out.result.StopReason)
	require.Len(t, out.result.History, 2)
	require.Equal(t, 1, w.count(ActivityPublish), "the best model is published when a budget ends the run")

	cfg.Budgets = Budgets{TrainTokens: 1}
	p := 1.0
	cfg.Mutation.Probability = &p
	out = runToEnd(t, cfg, newFakeWorld(), nil)
	require.Contains(t, out.result.StopReason, "training-token budget 1 reached")
	require.Len(t, out.result.History, 2)
}
