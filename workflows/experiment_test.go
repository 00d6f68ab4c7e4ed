package workflows

import (
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

func testExperiment() ExperimentConfig {
	base := testConfig()
	base.Generations = 0 // the budget ends every child
	return ExperimentConfig{
		Name: "exp", Base: base, Seeds: Seeds{11, 12, 13},
		Budget: ExperimentBudget{Tokens: 9000}, MaxParallel: 2,
	}
}

func runExperiment(t *testing.T, e ExperimentConfig, w *fakeWorld) (*ExperimentResult, error) {
	t.Helper()
	env := quietSuite().NewTestWorkflowEnvironment()
	env.SetStartTime(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	env.SetWorkflowRunTimeout(time.Hour)
	env.RegisterWorkflowWithOptions(Evolution, workflow.RegisterOptions{Name: WorkflowEvolution})
	env.RegisterWorkflowWithOptions(Experiment, workflow.RegisterOptions{Name: WorkflowExperiment})
	w.register(env)
	env.ExecuteWorkflow(WorkflowExperiment, ExperimentInput{ExperimentConfig: e})
	require.True(t, env.IsWorkflowCompleted())
	if err := env.GetWorkflowError(); err != nil {
		return nil, err
	}
	var res ExperimentResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return &res, nil
}

func TestExperimentRunsEveryArmAndSeedAsAChild(t *testing.T) {
	w := newFakeWorld()
	e := testExperiment()
	res, err := runExperiment(t, e, w)
	require.NoError(t, err)
	require.Equal(t, DefaultArms, res.Arms)
	require.Len(t, res.Children, 4*3)
	require.Equal(t, 2, res.PeakParallel, "max_parallel bounds the children in flight")
	evalCost := int64(4 * 32 * 2)
	for i, o := range res.Children {
		arm, seed := DefaultArms[i/3], e.Seeds[i%3]
		require.Equal(t, arm, o.Arm)
		require.Equal(t, seed, o.Seed)
		require.Equal(t, "evo-exp-"+arm+"-s"+itoa(seed), o.WorkflowID)
		require.True(t, o.Done, "%s: %s", o.WorkflowID, o.Error)
		spent := o.TrainTokens + o.ScoredTokens
		// Within one activity's cost: less than an evaluation short, at most a fine-tune step over.
		require.LessOrEqual(t, spent, e.Budget.Tokens+100, o.WorkflowID)
		require.Greater(t, spent, e.Budget.Tokens-evalCost, o.WorkflowID)
		require.Contains(t, o.StopReason, "compute budget 9000 tokens reached")
		require.Positive(t, o.Generations)
		require.NotEmpty(t, o.History)
	}

	// Memoised work shared between arms: every child asks for generation 0
	// with the parent's request (Run is not part of the memo key), and
	// scores it with the parent's requests, so the store computes each once.
	require.Len(t, w.initInputs, 1+len(res.Children))
	want := w.initInputs[0]
	for _, in := range w.initInputs[1:] {
		in.Run = want.Run
		require.Equal(t, want, in)
	}
	shared := map[string]bool{}
	for _, in := range w.evalInputs[:len(res.Shared.Population)] {
		shared[evalKey(in)] = true
	}
	require.Len(t, shared, e.Base.Population)
	gen0 := map[ModelRef]bool{}
	for _, ref := range res.Shared.Population {
		gen0[ref] = true
	}
	reused := 0
	for _, in := range w.evalInputs[len(res.Shared.Population):] {
		if gen0[in.Model] && in.Suite.Split == SplitValidation {
			require.True(t, shared[evalKey(in)], "a child scores generation 0 with the parent's request")
			reused++
		}
	}
	require.GreaterOrEqual(t, reused, e.Base.Population*len(res.Children))
	require.Equal(t, int64(e.Base.Population)*evalCost, res.Shared.Gen0Tokens)

	// Same dev and test items for every arm and seed.
	seeds := map[uint64]bool{}
	for _, in := range w.evalInputs {
		seeds[in.Suite.Seed] = true
	}
	require.Equal(t, map[uint64]bool{e.Base.Seed: true}, seeds)

	// The same experiment again gives the same table.
	again, err := runExperiment(t, e, newFakeWorld())
	require.NoError(t, err)
	require.Equal(t, res.Children, again.Children)
}

func evalKey(in EvaluateInput) string {
	b, _ := json.Marshal(struct {
		M ModelRef
		S SuiteSpec
	}{in.Model, in.Suite})
	return string(b)
}

func itoa(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func TestExperimentRejectsBadConfigsNamingTheField(t *testing.T) {
	for want, change := range map[string]func(*ExperimentConfig){
		"seeds: needs at least 2 seeds":                        func(e *ExperimentConfig) { e.Seeds = Seeds{1} },
		"arms[1]: unknown arm \"evolution\"":                   func(e *ExperimentConfig) { e.Arms = []string{ModeEvoMerge, "evolution"} },
		"budget.tokens: must be positive":                      func(e *ExperimentConfig) { e.Budget.Tokens = 0 },
		"budget.tokens: 100 is too small for one generation":   func(e *ExperimentConfig) { e.Budget.Tokens = 100 },
		"base.selection.elitism: must be less than population": func(e *ExperimentConfig) { e.Base.Selection.Elitism = 6 },
		"seeds[1]: seed 3 is listed twice":                     func(e *ExperimentConfig) { e.Seeds = Seeds{3, 3} },
	} {
		e := testExperiment()
		change(&e)
		_, err := PrepareExperiment(e)
		require.ErrorContains(t, err, want)
		_, err = runExperiment(t, e, newFakeWorld())
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app)
		require.Equal(t, ErrTypeInvalidConfig, app.Type())
		require.Contains(t, err.Error(), want)
	}

	// Above the static bound (one token an item) but below what generation
	// 0 and one generation really cost, measured on the shared generation 0.
	e := testExperiment()
	e.Budget.Tokens = 2000
	_, err := PrepareExperiment(e)
	require.NoError(t, err)
	w := newFakeWorld()
	_, err = runExperiment(t, e, w)
	require.ErrorContains(t, err, "budget.tokens: 2000 is too small for one generation: scoring generation 0 costs 1536 tokens (measured)")
	require.Equal(t, 1, w.count(ActivityInitPopulation), "no child starts")
}

func TestSeedsReadAsCountOrList(t *testing.T) {
	var e struct{ Seeds Seeds }
	require.NoError(t, json.Unmarshal([]byte(`{"seeds": 3}`), &e))
	require.Equal(t, Seeds{1, 2, 3}, e.Seeds)
	require.NoError(t, json.Unmarshal([]byte(`{"seeds": [7, 9]}`), &e))
	require.Equal(t, Seeds{7, 9}, e.Seeds)
	require.ErrorContains(t, json.Unmarshal([]byte(`{"seeds": "x"}`), &e), "seeds: want a count or a list")
}

func TestChildConfigsDifferOnlyInArmSeedAndName(t *testing.T) {
	e, err := PrepareExperiment(testExperiment())
	require.NoError(t, err)
	e.Arms = Arms
	for _, arm := range Arms {
		c, err := Prepare(e.ChildConfig(arm, 12))
		require.NoError(t, err, arm)
		require.Equal(t, uint64(12), c.Seed)
		require.Equal(t, e.Base.Seed, c.initSeed(), "generation 0 comes from the base seed")
		require.Equal(t, e.Base.Seed, c.fitnessSeed(), "items come from the base seed")
		require.Equal(t, int64(9000), c.Budgets.Tokens)
		require.Equal(t, experimentGenerations, c.Generations)
		require.Equal(t, "exp-"+arm+"-s12", c.Name)
		require.Equal(t, c.Name, c.Lineage)
		require.Equal(t, arm == ArmFitnessSharing, c.Selection.FitnessSharing != nil)
	}
	names := []string{}
	for _, s := range e.Seeds {
		names = append(names, ChildWorkflowID(e.Name, ModeEvoMerge, s))
	}
	sort.Strings(names)
	require.Equal(t, []string{"evo-exp-evomerge-s11", "evo-exp-evomerge-s12", "evo-exp-evomerge-s13"}, names)
	_ = testsuite.ErrMockStartChildWorkflowFailed
}
