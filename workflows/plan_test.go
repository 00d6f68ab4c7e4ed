package workflows

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRNGIsSeededAndResumable(t *testing.T) {
	a, b := NewRNG(1), NewRNG(1)
	for i := 0; i < 100; i++ {
		require.Equal(t, a.Uint64(), b.Uint64())
	}
	require.NotEqual(t, NewRNG(1).Uint64(), NewRNG(2).Uint64())

	// The state survives JSON (continue-as-new) and the sequence goes on.
	data, err := json.Marshal(a)
	require.NoError(t, err)
	var c RNG
	require.NoError(t, json.Unmarshal(data, &c))
	for i := 0; i < 10; i++ {
		require.Equal(t, a.Uint64(), c.Uint64())
	}

	counts := make([]int, 7)
	for i := 0; i < 7000; i++ {
		v := a.Intn(7)
		require.True(t, v >= 0 && v < 7)
		counts[v]++
	}
	for _, n := range counts {
		require.InDelta(t, 1000, n, 150)
	}
	for i := 0; i < 1000; i++ {
		lr := a.LogUniform(1e-4, 1e-2)
		require.True(t, lr >= 1e-4 && lr <= 1e-2)
	}
	require.Equal(t, 1, a.Weighted([]float64{0, 5, -1}))
}

// population of n scored nodes, ID i has fitness 1 - i/n (ID 0 is best).
func rankedPopulation(n int) ([]Node, []int) {
	nodes := make([]Node, n)
	ids := make([]int, n)
	for i := range nodes {
		nodes[i] = Node{ID: i, Ref: fmt.Sprintf("sha256:%064x", i), Scored: true, Fitness: 1 - float64(i)/float64(n), Status: StatusAlive}
		ids[i] = i
	}
	return nodes, ranked(nodes, ids)
}

func selectionCounts(sel Selection, n, draws int) []int {
	nodes, ids := rankedPopulation(n)
	rng := NewRNG(3)
	counts := make([]int, n)
	for i := 0; i < draws; i++ {
		counts[SelectParent(sel, rng, nodes, ids)]++
	}
	return counts
}

func TestTournamentSelection(t *testing.T) {
	counts := selectionCounts(Selection{Scheme: SchemeTournament, TournamentSize: 3}, 10, 20000)
	// With 3 distinct entrants the two worst can never win.
	require.Zero(t, counts[8])
	require.Zero(t, counts[9])
	// P(best wins) = 1 - C(9,3)/C(10,3) = 0.3.
	require.InDelta(t, 0.3, float64(counts[0])/20000, 0.02)
	for i := 1; i < 8; i++ {
		require.Greater(t, counts[i-1], counts[i])
	}
}

func TestTruncationSelection(t *testing.T) {
	counts := selectionCounts(Selection{Scheme: SchemeTruncation, TruncationFraction: 0.3}, 10, 9000)
	for i := 0; i < 3; i++ {
		require.InDelta(t, 3000, counts[i], 300)
	}
	for i := 3; i < 10; i++ {
		require.Zero(t, counts[i], "member %d is below the truncation line", i)
	}
}

func TestRouletteSelection(t *testing.T) {
	counts := selectionCounts(Selection{Scheme: SchemeRoulette}, 10, 20000)
	for i := 1; i < 10; i++ {
		require.Greater(t, counts[i-1], counts[i]-200, "roughly proportional to fitness")
	}
	require.Greater(t, counts[0], 5*counts[9])
	require.Positive(t, counts[9], "the worst keeps a small chance")
}

func TestSelectParentsAreDistinct(t *testing.T) {
	nodes, ids := rankedPopulation(4)
	rng := NewRNG(5)
	for _, scheme := range []string{SchemeTournament, SchemeRoulette, SchemeTruncation} {
		for i := 0; i < 200; i++ {
			ps := SelectParents(Selection{Scheme: scheme, TournamentSize: 3, TruncationFraction: 0.25}, rng, nodes, ids, 3)
			require.Len(t, ps, 3)
			require.NotEqual(t, ps[0], ps[1])
			require.NotEqual(t, ps[1], ps[2])
			require.NotEqual(t, ps[0], ps[2])
		}
	}
}

func TestPlanIsDeterministicPerSeed(t *testing.T) {
	cfg := DemoConfig().WithDefaults()
	nodes, ids := rankedPopulation(8)
	base := fmt.Sprintf("sha256:%064x", 99)
	plan := func(seed uint64) string {
		p := PlanGeneration(cfg, NewRNG(seed), nodes, ids, base, 8)
		b, err := json.Marshal(p)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, plan(11), plan(11))
	require.NotEqual(t, plan(11), plan(12))

	plans := PlanGeneration(cfg, NewRNG(11), nodes, ids, base, 8)
	require.Len(t, plans, cfg.Children)
	label := regexp.MustCompile(`^(ties|dare_ties|slerp|linear)(\([a-z]+=[0-9.→]+(,[a-z]+=[0-9.→]+)*\))? #\d+ × #\d+$`)
	methods := map[string]bool{}
	for i, p := range plans {
		require.Equal(t, 8+i, p.ID)
		require.Regexp(t, label, p.MergeLabel)
		methods[p.Genome.Method] = true
		info := Methods[p.Genome.Method]
		if info.NeedsBase {
			require.Equal(t, len(p.Inputs)-1, p.Genome.Base)
			require.Equal(t, base, p.Inputs[p.Genome.Base])
		} else {
			require.Equal(t, -1, p.Genome.Base)
		}
		require.Len(t, p.Genome.PerModel, len(p.Inputs))
		for k, r := range cfg.Crossover.Methods[methodIndex(cfg, p.Genome.Method)].Params {
			var got []float64
			if !info.Params[k] {
				got = p.Genome.PerModel[0][k].Anchors
			} else {
				got = p.Genome.Global[k].Anchors
			}
			require.Len(t, got, r.Anchors, k)
			for _, v := range got {
				require.True(t, v >= r.Min-1e-9 && v <= r.Max+1e-9, "%s=%v outside [%v,%v]", k, v, r.Min, r.Max)
			}
		}
		if p.FineTune != nil {
			ft := p.FineTune
			require.True(t, ft.LR >= cfg.Mutation.LR.Min*0.99 && ft.LR <= cfg.Mutation.LR.Max*1.01)
			require.True(t, ft.Steps >= cfg.Mutation.Steps.Min && ft.Steps <= cfg.Mutation.Steps.Max)
			require.Contains(t, cfg.Mutation.Datasets, MutationDataset{Family: ft.Dataset, Weight: 1})
			require.Nil(t, ft.Mixture, "synthetic families of equal weight draw one family, as before")
			require.Contains(t, p.TuneLabel, "on "+ft.Dataset)
		}
	}
	require.Greater(t, len(methods), 1, "methods are sampled, not fixed")
}

func TestPlanWithoutBaseUsesOnlyBaseFreeMethods(t *testing.T) {
	cfg := DemoConfig().WithDefaults()
	nodes, ids := rankedPopulation(8)
	for _, p := range PlanGeneration(cfg, NewRNG(1), nodes, ids, "", 8) {
		require.False(t, Methods[p.Genome.Method].NeedsBase, p.Genome.Method)
	}
}

func methodIndex(cfg RunConfig, name string) int {
	for i, m := range cfg.Crossover.Methods {
		if m.Name == name {
			return i
		}
	}
	return -1
}

func TestFineTuneLabel(t *testing.T) {
	require.Equal(t, "lora r=8 lr=0.0002 20 steps on addition",
		FineTuneLabel(FineTuneParams{Method: "lora", Rank: 8, LR: 2e-4, Steps: 20, Dataset: "addition"}))
	shared := map[string]Param{"density": {Anchors: []float64{0.5}}, "weight": {Anchors: []float64{0.7}}}
	other := map[string]Param{"density": {Anchors: []float64{0.5}}, "weight": {Anchors: []float64{0.9}}}
	require.Equal(t, "ties(d=0.5) #3 × #7",
		MergeLabel(Genome{Method: "ties", Base: 2, PerModel: []map[string]Param{shared, other, {}}}, []int{3, 7}))
	require.Equal(t, "slerp(t=0.2→0.8) #1 × #2",
		MergeLabel(Genome{Method: "slerp", Base: -1, Global: map[string]Param{"t": {Anchors: []float64{0.2, 0.8}}}}, []int{1, 2}))
}

func TestSurvivorsKeepElitesThenBestChildren(t *testing.T) {
	cfg := RunConfig{Population: 4, Selection: Selection{Elitism: 1}}
	nodes := []Node{
		{ID: 0, Ref: "a", Scored: true, Fitness: 0.5},
		{ID: 1, Ref: "b", Scored: true, Fitness: 0.4},
		{ID: 2, Ref: "c", Scored: true, Fitness: 0.3},
		{ID: 3, Ref: "d", Scored: true, Fitness: 0.2},
		{ID: 4, Ref: "e", Scored: true, Fitness: 0.9},
		{ID: 5, Ref: "f", Scored: true, Fitness: 0.8},
		{ID: 6, Ref: "e", Scored: true, Fitness: 0.9}, // same model as #4
		{ID: 7, Ref: "g", Status: StatusDropped},      // failed child
		{ID: 8, Ref: "h", Scored: true, Fitness: 0.1},
	}
	// Better children replace all but the elite; the duplicate and the
	// dropped child are never kept.
	require.Equal(t, []int{0, 4, 5, 8}, Survivors(cfg, nodes, []int{0, 1, 2, 3}, []int{4, 5, 6, 7, 8}))
	// Too few successful children: the best current members fill up.
	require.Equal(t, []int{0, 4, 1, 2}, Survivors(cfg, nodes, []int{0, 1, 2, 3}, []int{4, 7}))
	// Elitism 2 keeps the two best current members even if children are better.
	cfg.Selection.Elitism = 2
	require.Equal(t, []int{0, 1, 4, 5}, Survivors(cfg, nodes, []int{0, 1, 2, 3}, []int{4, 5, 6}))
}

// With data files each mutated child carries its own mixture: every dataset,
// weights drawn around the configured ones and summing to 1, the same for
// the same seed and different between children.
func TestFineTuneMixtureIsDrawnPerChild(t *testing.T) {
	cfg := DemoConfig()
	one := 1.0
	cfg.Mutation.Probability = &one
	a, b := "store:"+strings.Repeat("a", 64), "store:"+strings.Repeat("b", 64)
	cfg.Mutation.Datasets = []MutationDataset{{Path: a, Weight: 3}, {Path: b}, {Family: "addition"}}
	cfg.Mutation.ChatTemplate = "{{ messages }}"
	cfg, err := Prepare(cfg)
	require.NoError(t, err)
	draw := func(seed uint64) []*FineTuneParams {
		rng := NewRNG(seed)
		var out []*FineTuneParams
		for range 4 {
			out = append(out, SampleFineTune(cfg, rng))
		}
		return out
	}
	first := draw(7)
	require.Equal(t, first, draw(7))
	for _, p := range first {
		require.Empty(t, p.Dataset)
		require.Equal(t, "{{ messages }}", p.ChatTemplate)
		require.Len(t, p.Mixture, 3)
		sum := 0.0
		for _, m := range p.Mixture {
			sum += m.Weight
		}
		require.InDelta(t, 1, sum, 0.01)
		require.Equal(t, a, p.Mixture[0].Path)
		require.Equal(t, "addition", p.Mixture[2].Family)
		// 3 × [1/2, 2] against 1 × [1/2, 2] twice: the first stays the largest.
		require.Greater(t, p.Mixture[0].Weight, p.Mixture[1].Weight*0.74)
		require.Contains(t, FineTuneLabel(*p), "mix(store:aaaaaaaa ")
	}
	require.NotEqual(t, first[0].Mixture, first[1].Mixture)
}
