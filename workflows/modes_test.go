package workflows

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestModesUseOnlyTheirOperators(t *testing.T) {
	for _, mode := range Modes {
		t.Run(mode, func(t *testing.T) {
			w := newFakeWorld()
			cfg := testConfig()
			cfg.Mode = mode
			out := runToEnd(t, cfg, w, nil)
			res := out.result
			require.Equal(t, mode, res.Mode)
			require.Equal(t, "completed 3 generations", res.StopReason)
			final := finalState(t, out)
			children := cfg.WithDefaults().Children
			switch mode {
			case ModeFineTuneOnly:
				require.Zero(t, w.count(ActivityMerge), "finetune_only merges nothing")
				require.Equal(t, 3*children, w.count(ActivityFineTune), "every child is a fine-tune")
			case ModeMergeOnly, ModeRandomMerge:
				require.Zero(t, w.count(ActivityFineTune), "%s fine-tunes nothing", mode)
				require.Equal(t, 3*children, w.count(ActivityMerge))
			case ModeEvoMerge:
				require.Equal(t, 3*children, w.count(ActivityMerge))
				require.Positive(t, w.count(ActivityFineTune))
			}
			for _, n := range final.Nodes[cfg.Population:] {
				if mode == ModeFineTuneOnly {
					require.Len(t, n.Parents, 1)
					require.True(t, strings.HasPrefix(n.Op, "fine-tune "), n.Op)
				} else {
					require.Len(t, n.Parents, 2)
					require.True(t, strings.HasPrefix(n.Op, "merge "), n.Op)
				}
			}
			if mode == ModeRandomMerge {
				require.Equal(t, bestEver(final.Nodes), res.Winner.ID, "random search keeps the best model it has seen")
			} else {
				require.Equal(t, final.leaderboard()[0].ID, res.Winner.ID)
			}
		})
	}
}

// random_merge applies no selection pressure: its parents are drawn
// uniformly, so over many draws the worst member is a parent as often as the
// best; tournament selection picks the best far more often.
func TestRandomMergeHasNoSelectionPressure(t *testing.T) {
	nodes := make([]Node, 6)
	for i := range nodes {
		nodes[i] = Node{ID: i, Scored: true, Fitness: float64(6 - i), Ref: "r" + string(rune('a'+i))}
	}
	pop := ranked(nodes, []int{0, 1, 2, 3, 4, 5})
	count := func(mode string) (best, worst int) {
		cfg := testConfig().WithDefaults()
		cfg.Mode, cfg.Children = mode, 2000
		for _, p := range planByMode(cfg, NewRNG(1), nodes, pop, "", 6) {
			for _, id := range p.Parents {
				if id == 0 {
					best++
				}
				if id == 5 {
					worst++
				}
			}
		}
		return
	}
	b, w := count(ModeRandomMerge)
	require.InDelta(t, 1, float64(b)/float64(w), 0.15, "uniform parents: best %d, worst %d", b, w)
	b, w = count(ModeMergeOnly)
	require.Greater(t, b, 3*w, "tournament parents: best %d, worst %d", b, w)
}

// Equal compute: every mode spends its budget of training + scored tokens to
// within one activity's cost: less than one evaluation left unspent, over by
// at most one fine-tune step (the fake's costs are exact after the first of
// each: 2 tokens per item scored, 100 per fine-tune step).
func TestTokenBudgetEndsEveryModeWithinOneActivity(t *testing.T) {
	const budget = 9000
	for _, mode := range Modes {
		t.Run(mode, func(t *testing.T) {
			w := newFakeWorld()
			cfg := testConfig()
			cfg.Mode = mode
			cfg.Generations = 1000 // the budget, not the generation count, ends the run
			cfg.Budgets.Tokens = budget
			out := runToEnd(t, cfg, w, nil)
			res := out.result
			spent := res.TrainTokens + res.ScoredTokens
			evalCost := int64(4 * 32 * 2)
			require.Contains(t, res.StopReason, "compute budget 9000 tokens reached")
			require.LessOrEqual(t, spent, int64(budget)+100, "spent %d: over by more than one fine-tune step", spent)
			require.Greater(t, spent, int64(budget)-evalCost, "spent %d leaves more than one evaluation's cost", spent)
			require.Equal(t, int64(budget), res.BudgetTokens)
			// What the activities reported, added up independently.
			var scored, trained int64
			for _, c := range w.tokenLog {
				switch {
				case c.Activity == ActivityFineTune:
					trained += c.Tokens
				case c.Split == SplitValidation:
					scored += c.Tokens
				}
			}
			require.Equal(t, scored, res.ScoredTokens, "every dev evaluation charged")
			require.Equal(t, trained, res.TrainTokens, "every fine-tune charged its steps")
			require.Equal(t, int64(w.count(ActivityEvaluate)-2)*evalCost, res.ScoredTokens, "dev evaluations (the 2 held-out ones are not charged)")
			require.Equal(t, 2*int64(4*64*2), res.HeldOutTokens)
			// Per-generation records are cumulative and end at the total.
			last := res.History[len(res.History)-1]
			require.Equal(t, res.ScoredTokens, last.ScoredTokens)
			require.Equal(t, res.TrainTokens, last.TrainTokens)
			for i := 1; i < len(res.History); i++ {
				require.GreaterOrEqual(t, res.History[i].ScoredTokens+res.History[i].TrainTokens,
					res.History[i-1].ScoredTokens+res.History[i-1].TrainTokens)
			}
			if mode == ModeFineTuneOnly || mode == ModeEvoMerge {
				require.Positive(t, res.TrainTokens)
			} else {
				require.Zero(t, res.TrainTokens)
			}
		})
	}
}

func TestTokenBudgetSameSpendWithAnyParallelism(t *testing.T) {
	spend := map[int]int64{}
	for _, par := range []int{1, 4} {
		cfg := testConfig()
		cfg.Mode = ModeFineTuneOnly
		cfg.Generations = 1000
		cfg.Budgets.Tokens = 9000
		cfg.Parallelism = par
		res := runToEnd(t, cfg, newFakeWorld(), nil).result
		spend[par] = res.TrainTokens + res.ScoredTokens
		require.LessOrEqual(t, spend[par], int64(9000))
	}
	require.Equal(t, spend[1], spend[4], "the budget gate serialises at the edge, so parallelism does not change the spend")
}

func TestModeAndBudgetConfigErrorsNameTheField(t *testing.T) {
	for field, change := range map[string]func(*RunConfig){
		"mode: unknown mode \"fine_tune_only\"":               func(c *RunConfig) { c.Mode = "fine_tune_only" },
		"budgets.tokens: 100 is too small for one generation": func(c *RunConfig) { c.Budgets.Tokens = 100 },
		"budgets.tokens: must not be negative":                func(c *RunConfig) { c.Budgets.Tokens = -1 },
		"selection.fitness_sharing.radius: must be in (0, 1]": func(c *RunConfig) { c.Selection.FitnessSharing = &FitnessSharing{Radius: 2} },
	} {
		cfg := testConfig()
		change(&cfg)
		_, err := Prepare(cfg)
		require.Error(t, err)
		require.Contains(t, err.Error(), field)
	}
	// (6 + 4 children) x 128 dev items = 1280 tokens at least.
	cfg := testConfig()
	cfg.Budgets.Tokens = 1280
	_, err := Prepare(cfg)
	require.NoError(t, err)
}

// Lineage distance and shared fitness, by hand: roots 0, 1, 2; node 3 merges
// 0 and 1, node 4 merges 0 and 3 (3/4 of 0, 1/4 of 1).
func TestFitnessSharingByLineageDistance(t *testing.T) {
	nodes := []Node{
		{ID: 0, Scored: true, Fitness: 0.5},
		{ID: 1, Scored: true, Fitness: 0.2},
		{ID: 2, Scored: true, Fitness: 0.4},
		{ID: 3, Scored: true, Fitness: 0.6, Parents: []int{0, 1}, Generation: 1},
		{ID: 4, Scored: true, Fitness: 0.6, Parents: []int{0, 3}, Generation: 2},
	}
	a := &ancestry{nodes: nodes, memo: map[int]map[int]float64{}}
	require.InDelta(t, 1, a.distance(0, 1), 1e-12)
	require.InDelta(t, 0.5, a.distance(0, 3), 1e-12)
	require.InDelta(t, 0.25, a.distance(3, 4), 1e-12)
	require.InDelta(t, 0.25, a.distance(0, 4), 1e-12)
	require.InDelta(t, 1, a.distance(2, 4), 1e-12)
	require.Zero(t, a.distance(4, 4))

	// Population {2, 3, 4}, radius 0.5, alpha 1: 3 and 4 are 0.25 apart,
	// sh = 1 - 0.25/0.5 = 0.5, so each has niche 1.5; 2 is alone (niche 1).
	// Worst fitness lo = 0.4: 3 and 4 -> 0.4 + 0.2/1.5, 2 stays 0.4.
	view, order := sharedFitness(FitnessSharing{Radius: 0.5, Alpha: 1}, nodes, []int{2, 3, 4})
	require.InDelta(t, 0.4+0.2/1.5, view[3].Fitness, 1e-12)
	require.InDelta(t, 0.4+0.2/1.5, view[4].Fitness, 1e-12)
	require.InDelta(t, 0.4, view[2].Fitness, 1e-12)
	require.Equal(t, []int{3, 4, 2}, order)
	require.Equal(t, 0.6, nodes[3].Fitness, "the lineage itself is not changed")

	// With a radius below their distance nobody shares.
	view, _ = sharedFitness(FitnessSharing{Radius: 0.2, Alpha: 1}, nodes, []int{2, 3, 4})
	require.Equal(t, 0.6, view[4].Fitness)
	require.False(t, math.IsNaN(view[2].Fitness))
}

func TestFitnessSharingChangesTheRunDeterministically(t *testing.T) {
	cfg := testConfig()
	cfg.Generations = 4
	plain := runToEnd(t, cfg, newFakeWorld(), nil)
	cfg.Selection.FitnessSharing = &FitnessSharing{Radius: 0.9}
	a := runToEnd(t, cfg, newFakeWorld(), nil)
	b := runToEnd(t, cfg, newFakeWorld(), nil)
	require.Equal(t, a.result.Winner, b.result.Winner)
	pa := a.inputs[len(a.inputs)-1].State
	pp := plain.inputs[len(plain.inputs)-1].State
	var parentsA, parentsP [][]int
	for _, n := range pa.Nodes {
		parentsA = append(parentsA, n.Parents)
	}
	for _, n := range pp.Nodes {
		parentsP = append(parentsP, n.Parents)
	}
	require.NotEqual(t, parentsP, parentsA, "sharing must change who is chosen as a parent")
}

// finalState is the lineage and population at the end of the run (the
// last execution's queries; its input holds the state before its generation).
func finalState(t *testing.T, out runOutcome) *RunState {
	t.Helper()
	st := &RunState{}
	v, err := out.last.QueryWorkflow(QueryLineage)
	require.NoError(t, err)
	require.NoError(t, v.Get(&st.Nodes))
	var board []Node
	v, err = out.last.QueryWorkflow(QueryLeaderboard)
	require.NoError(t, err)
	require.NoError(t, v.Get(&board))
	for _, n := range board {
		st.Population = append(st.Population, n.ID)
	}
	return st
}

// stepsOf reads the step count of a fine-tune from a node's op.
func stepsOf(t *testing.T, op string) int {
	t.Helper()
	f := strings.Fields(op[strings.Index(op, "fine-tune"):])
	for i, w := range f {
		if w == "steps" {
			n, err := strconv.Atoi(f[i-1])
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no steps in %q", op)
	return 0
}
