package workflows

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// budgetRun runs cfg with the budget to its end and returns the result, the
// final lineage and the fake world (whose token log is what the activities
// reported).
func budgetRun(t *testing.T, cfg RunConfig, w *fakeWorld, setup func(*testsuite.TestWorkflowEnvironment, int)) (*RunResult, *RunState) {
	t.Helper()
	cfg.Generations = 1000 // the budget, not the generation count, ends the run
	out := runToEnd(t, cfg, w, setup)
	return out.result, finalState(t, out)
}

// logged adds up the dev-split evaluations and fine-tunes the fakes reported.
func logged(w *fakeWorld) (spent, maxActivity, maxEval int64) {
	for _, c := range w.tokenLog {
		if c.Activity == ActivityEvaluate && c.Split == SplitTest {
			continue // held out: not charged
		}
		spent += c.Tokens
		maxActivity = max(maxActivity, c.Tokens)
		if c.Activity == ActivityEvaluate {
			maxEval = max(maxEval, c.Tokens)
		}
	}
	return
}

// A budget that ends in the middle of a generation: the last children's
// fine-tunes are cut to the steps that fit (or, for a merged child, left
// out), so at every budget the spend ends less than one evaluation short of
// it and at most one fine-tune step over it.
func TestTokenBudgetEndsMidGenerationWithinOneActivity(t *testing.T) {
	const evalCost, perStep = 4 * 32 * 2, 100
	cut := map[string]int{}
	for _, mode := range []string{ModeFineTuneOnly, ModeEvoMerge} {
		for budget := int64(3000); budget <= 9000; budget += 450 {
			w := newFakeWorld()
			cfg := testConfig()
			cfg.Mode = mode
			cfg.Budgets.Tokens = budget
			res, final := budgetRun(t, cfg, w, nil)
			spent := res.TrainTokens + res.ScoredTokens
			require.Contains(t, res.StopReason, "compute budget", "%s at %d", mode, budget)
			if over := spent - budget; over > perStep {
				// Only the first fine-tune, of a cost nobody knew, may overrun more:
				// it ran alone, spent the budget and was not evaluated.
				var fts []int64
				for _, c := range w.tokenLog {
					if c.Activity == ActivityFineTune {
						fts = append(fts, c.Tokens)
					}
				}
				require.Len(t, fts, 1, "%s at %d: spent %d, over by more than one step", mode, budget, spent)
				require.Less(t, over, fts[0], "%s at %d: over by less than the first fine-tune", mode, budget)
				cut["first fine-tune over"]++
			}
			require.Greater(t, spent, budget-evalCost, "%s at %d: spent %d, short by an evaluation or more", mode, budget, spent)
			got, _, _ := logged(w)
			require.Equal(t, got, spent, "the run charged what the activities reported")
			for _, n := range final.Nodes {
				switch {
				case strings.Contains(n.Op, "cut from"):
					cut[mode]++
					require.Less(t, stepsOf(t, n.Op), 30)
				case strings.Contains(n.Op, "left out"):
					cut[mode+" left out"]++
				}
			}
		}
	}
	require.Positive(t, cut[ModeFineTuneOnly], "some finetune_only budget ends mid-fine-tune: %v", cut)
	require.Positive(t, cut[ModeEvoMerge]+cut[ModeEvoMerge+" left out"], "some evomerge budget ends mid-fine-tune: %v", cut)
}

// A budget smaller than the first fine-tune's cost: nobody knows that cost
// before it runs, so it runs alone; it spends the budget, and its child is
// not evaluated, so the run ends over the budget by less than that one
// fine-tune's cost. The older gate also evaluated it (one activity more).
func TestTokenBudgetSmallerThanTheFirstFineTune(t *testing.T) {
	const ftCost = 5000
	cfg := testConfig()
	cfg.Mode = ModeFineTuneOnly
	gen0 := int64(cfg.Population) * 4 * 32 * 2
	cfg.Budgets.Tokens = gen0 + 2000

	w := newFakeWorld()
	w.trainCost = func(FineTuneInput) int64 { return ftCost }
	res, final := budgetRun(t, cfg, w, nil)
	spent := res.TrainTokens + res.ScoredTokens
	require.Equal(t, 1, w.count(ActivityFineTune), "the first fine-tune runs alone and no other follows it")
	require.Equal(t, int64(ftCost), res.TrainTokens)
	require.Greater(t, spent, cfg.Budgets.Tokens)
	require.Less(t, spent-cfg.Budgets.Tokens, int64(ftCost), "over by less than the one fine-tune")
	require.Equal(t, gen0, res.ScoredTokens, "the fine-tuned child is not evaluated")
	dev := 0
	for _, c := range w.tokenLog {
		if c.Activity == ActivityEvaluate && c.Split == SplitValidation {
			dev++
		}
	}
	require.Equal(t, cfg.Population, dev, "generation 0 only")
	require.Contains(t, res.StopReason, "compute budget")
	var reasons []string
	for _, n := range final.Nodes {
		if n.Status == StatusSkipped {
			reasons = append(reasons, n.Reason)
		}
	}
	require.Contains(t, strings.Join(reasons, "\n"), "not evaluated: its fine-tune (5000 tokens) spent the compute budget")
	require.Equal(t, res.History[len(res.History)-1].Skipped, len(reasons))

	// The recorded gate of runs started before budget version 1.
	w = newFakeWorld()
	w.trainCost = func(FineTuneInput) int64 { return ftCost }
	old, _ := budgetRun(t, cfg, w, func(env *testsuite.TestWorkflowEnvironment, _ int) {
		env.OnGetVersion(versionBudget, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	})
	require.Equal(t, spent+4*32*2, old.TrainTokens+old.ScoredTokens, "the older gate evaluated the child too")
}

// Activities whose costs vary (each fine-tune step and each evaluation
// costs what the model and its data make it, as real ones do): with
// parallelism 1 the bound is the issue's, measured against the activities'
// own reports: less than one evaluation left, over by less than one
// activity's cost.
func TestTokenBudgetWithVaryingCostsWithinOneActivity(t *testing.T) {
	vary := func(s string, n int64) int64 {
		h := sha256.Sum256([]byte(s))
		return int64(h[0]) % n
	}
	for _, mode := range Modes {
		for _, budget := range []int64{4000, 7300, 12000} {
			w := newFakeWorld()
			w.trainCost = func(in FineTuneInput) int64 {
				return int64(in.Params.Steps) * (60 + vary(in.Base+in.Params.Dataset, 80))
			}
			w.evalCost = func(in EvaluateInput) int64 { return 200 + vary(in.Model+in.Suite.Split, 120) }
			cfg := testConfig()
			cfg.Mode = mode
			cfg.Parallelism = 1
			cfg.Budgets.Tokens = budget
			res, _ := budgetRun(t, cfg, w, nil)
			spent, maxActivity, maxEval := logged(w)
			require.Equal(t, spent, res.TrainTokens+res.ScoredTokens)
			require.Less(t, spent-budget, maxActivity, "%s at %d: spent %d", mode, budget, spent)
			require.Less(t, budget-spent, maxEval, "%s at %d: spent %d", mode, budget, spent)
		}
	}
}
