package workflows

import (
	"fmt"
	"math"
)

// Run modes: the arms of an experiment (issue 12). Each is the Evolution
// workflow with one part switched off, so an experiment compares like with
// like: same population, same dev and test items, same compute budget.
const (
	// ModeEvoMerge: select parents, merge, fine-tune with mutation.probability (the default).
	ModeEvoMerge = "evomerge"
	// ModeFineTuneOnly: each child is one selected member fine-tuned (always); no merges.
	ModeFineTuneOnly = "finetune_only"
	// ModeMergeOnly: selection and crossover; no fine-tuning.
	ModeMergeOnly = "merge_only"
	// ModeRandomMerge: parents drawn uniformly, random genomes, survivors drawn
	// uniformly (no selection pressure); the winner is the best model seen.
	ModeRandomMerge = "random_merge"
)

// Modes lists the run modes in the order errors and tables list them.
var Modes = []string{ModeEvoMerge, ModeFineTuneOnly, ModeMergeOnly, ModeRandomMerge}

// mode is the effective mode ("" in configs and histories from before modes is evomerge).
func (c RunConfig) mode() string {
	if c.Mode == "" {
		return ModeEvoMerge
	}
	return c.Mode
}

// initSeed and fitnessSeed: the seeds of generation 0 and of the items,
// the run's seed unless the config fixes them (as an experiment does).
func (c RunConfig) initSeed() uint64 {
	if c.Init.Seed != nil {
		return *c.Init.Seed
	}
	return c.Seed
}

func (c RunConfig) fitnessSeed() uint64 {
	if c.Fitness.Seed != nil {
		return *c.Fitness.Seed
	}
	return c.Seed
}

func (f FitnessSharing) withDefaults() FitnessSharing {
	if f.Radius == 0 {
		f.Radius = 0.5
	}
	if f.Alpha == 0 {
		f.Alpha = 1
	}
	return f
}

func (c RunConfig) validateMode(p *problems) {
	known := false
	for _, m := range Modes {
		known = known || c.Mode == m
	}
	if c.Mode != "" && !known {
		p.bad("mode", "unknown mode %q (want %s, %s, %s or %s)", c.Mode, Modes[0], Modes[1], Modes[2], Modes[3])
	}
	if fs := c.Selection.FitnessSharing; fs != nil {
		if !(fs.Radius > 0 && fs.Radius <= 1) {
			p.bad("selection.fitness_sharing.radius", "must be in (0, 1] (lineage distance), got %v", fs.Radius)
		}
		if !(fs.Alpha > 0) || !finite(fs.Alpha) {
			p.bad("selection.fitness_sharing.alpha", "must be positive, got %v", fs.Alpha)
		}
	}
}

// planByMode plans a generation's children for the run's mode. evomerge is
// PlanGeneration unchanged (recorded histories depend on its draws).
func planByMode(cfg RunConfig, rng *RNG, nodes []Node, rankedPop []int, base ModelRef, nextID int) []ChildPlan {
	view, order := nodes, rankedPop
	if cfg.Selection.FitnessSharing != nil && cfg.mode() != ModeRandomMerge {
		view, order = sharedFitness(*cfg.Selection.FitnessSharing, nodes, rankedPop)
	}
	switch cfg.mode() {
	case ModeFineTuneOnly:
		plans := make([]ChildPlan, 0, cfg.Children)
		for i := 0; i < cfg.Children; i++ {
			parent := SelectParent(cfg.Selection, rng, view, order)
			ft := sampleFineTuneAlways(cfg, rng)
			plans = append(plans, ChildPlan{
				ID: nextID + i, Parents: []int{parent}, Inputs: []ModelRef{nodes[parent].Ref},
				MergeLabel: fmt.Sprintf("#%d", parent), FineTune: ft, TuneLabel: FineTuneLabel(*ft),
			})
		}
		return plans
	case ModeMergeOnly:
		noMutation := cfg
		zero := 0.0
		noMutation.Mutation.Probability = &zero
		return PlanGeneration(noMutation, rng, view, order, base, nextID)
	case ModeRandomMerge:
		plans := make([]ChildPlan, 0, cfg.Children)
		for i := 0; i < cfg.Children; i++ {
			parents := randomDistinct(rng, rankedPop, cfg.Crossover.Parents)
			refs := make([]ModelRef, len(parents))
			for j, id := range parents {
				refs[j] = nodes[id].Ref
			}
			inputs, g := SampleGenome(cfg, rng, refs, base)
			plans = append(plans, ChildPlan{ID: nextID + i, Parents: parents, Inputs: inputs, Genome: g, MergeLabel: MergeLabel(g, parents)})
		}
		return plans
	default:
		return PlanGeneration(cfg, rng, view, order, base, nextID)
	}
}

// sampleFineTuneAlways is SampleFineTune with the mutation probability at 1.
func sampleFineTuneAlways(cfg RunConfig, rng *RNG) *FineTuneParams {
	always := cfg
	one := 1.0
	always.Mutation.Probability = &one
	return SampleFineTune(always, rng)
}

// randomDistinct draws n distinct ids uniformly (a partial Fisher-Yates shuffle).
func randomDistinct(rng *RNG, ids []int, n int) []int {
	pool := append([]int(nil), ids...)
	n = min(n, len(pool))
	for i := 0; i < n; i++ {
		j := i + rng.Intn(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:n]
}

// randomSurvivors keeps cfg.Population members drawn uniformly from the
// current population and the scored children (random_merge: no selection
// pressure on who lives on).
func randomSurvivors(cfg RunConfig, rng *RNG, nodes []Node, current, children []int) []int {
	var pool []int
	seen := map[ModelRef]bool{}
	for _, id := range append(append([]int(nil), current...), children...) {
		if nodes[id].Scored && !seen[nodes[id].Ref] {
			seen[nodes[id].Ref] = true
			pool = append(pool, id)
		}
	}
	return randomDistinct(rng, pool, cfg.Population)
}

// bestEver is the best scored node of the whole run (ties by lower ID).
func bestEver(nodes []Node) int {
	all := make([]int, len(nodes))
	for i := range nodes {
		all[i] = i
	}
	if r := ranked(nodes, all); len(r) > 0 {
		return r[0]
	}
	return -1
}

// lineageDistance is the total-variation distance between two nodes'
// ancestry compositions: the share of each generation-0 member in a node,
// its parents' shares averaged at each merge (fine-tunes keep them). 0 for
// the same ancestry, 1 for disjoint ones. Deterministic and free: it needs
// only the lineage the workflow already holds.
type ancestry struct {
	nodes []Node
	memo  map[int]map[int]float64
}

func (a *ancestry) of(id int) map[int]float64 {
	if c, ok := a.memo[id]; ok {
		return c
	}
	n := a.nodes[id]
	c := map[int]float64{}
	if len(n.Parents) == 0 {
		c[id] = 1
	} else {
		w := 1 / float64(len(n.Parents))
		for _, p := range n.Parents {
			for k, v := range a.of(p) {
				c[k] += w * v
			}
		}
	}
	a.memo[id] = c
	return c
}

func (a *ancestry) distance(i, j int) float64 {
	ci, cj := a.of(i), a.of(j)
	d := 0.0
	for k, v := range ci {
		d += math.Abs(v - cj[k])
	}
	for k, v := range cj {
		if _, ok := ci[k]; !ok {
			d += v
		}
	}
	return d / 2
}

// sharedFitness returns a copy of nodes whose population members carry
// shared fitness, and the population ranked by it. A member's excess over
// the population's worst fitness is divided by its niche count
// sum_j sh(d_ij), sh(d) = 1 - (d/radius)^alpha within the radius, so the
// ranking stays meaningful for negative scores and near-duplicates share.
func sharedFitness(fs FitnessSharing, nodes []Node, pop []int) ([]Node, []int) {
	fs = fs.withDefaults()
	view := append([]Node(nil), nodes...)
	if len(pop) == 0 {
		return view, pop
	}
	a := &ancestry{nodes: nodes, memo: map[int]map[int]float64{}}
	lo := math.Inf(1)
	for _, id := range pop {
		lo = math.Min(lo, nodes[id].Fitness)
	}
	for _, i := range pop {
		niche := 0.0
		for _, j := range pop {
			if d := a.distance(i, j); d < fs.Radius {
				niche += 1 - math.Pow(d/fs.Radius, fs.Alpha)
			}
		}
		view[i].Fitness = lo + (nodes[i].Fitness-lo)/niche // niche >= 1: sh(d_ii) = 1
	}
	return view, ranked(view, pop)
}
