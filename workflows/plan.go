package workflows

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ChildPlan is everything needed to make one child: decided up front from
// the PRNG so a generation's plan depends only on the seed and the scores.
type ChildPlan struct {
	ID         int             `json:"id"`
	Parents    []int           `json:"parents"`
	Inputs     []ModelRef      `json:"inputs"`
	Genome     Genome          `json:"genome"`
	MergeLabel string          `json:"merge_label"`
	FineTune   *FineTuneParams `json:"fine_tune,omitempty"`
	TuneLabel  string          `json:"tune_label,omitempty"`
}

// SelectParent picks one ID from candidates (scored, ranked best first) with
// the configured scheme.
func SelectParent(sel Selection, rng *RNG, nodes []Node, candidates []int) int {
	switch sel.Scheme {
	case SchemeRoulette:
		// Fitness shifted so the worst candidate keeps a small chance: a
		// population with equal scores degrades to uniform, negative scores work.
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, id := range candidates {
			lo = math.Min(lo, nodes[id].Fitness)
			hi = math.Max(hi, nodes[id].Fitness)
		}
		eps := (hi - lo) * 0.05
		if eps == 0 {
			eps = 1
		}
		w := make([]float64, len(candidates))
		for i, id := range candidates {
			w[i] = nodes[id].Fitness - lo + eps
		}
		return candidates[rng.Weighted(w)]
	case SchemeTruncation:
		n := int(math.Ceil(sel.TruncationFraction * float64(len(candidates))))
		n = max(1, min(n, len(candidates)))
		return candidates[rng.Intn(n)]
	default: // tournament
		k := max(1, min(sel.TournamentSize, len(candidates)))
		// Draw k distinct entrants; candidates are ranked, so the lowest
		// index drawn is the tournament's winner.
		best := len(candidates)
		perm := identity(len(candidates))
		for i := 0; i < k; i++ {
			j := i + rng.Intn(len(perm)-i)
			perm[i], perm[j] = perm[j], perm[i]
			best = min(best, perm[i])
		}
		return candidates[best]
	}
}

// SelectParents picks n distinct parents: each draw runs the scheme over the
// candidates not chosen yet.
func SelectParents(sel Selection, rng *RNG, nodes []Node, ranked []int, n int) []int {
	pool := append([]int(nil), ranked...)
	out := make([]int, 0, n)
	for len(out) < n && len(pool) > 0 {
		id := SelectParent(sel, rng, nodes, pool)
		out = append(out, id)
		for i, p := range pool {
			if p == id {
				pool = append(pool[:i], pool[i+1:]...)
				break
			}
		}
	}
	return out
}

// SampleGenome draws a merge method (by weight, among those usable with or
// without a base) and its parameters for the given parents.
func SampleGenome(cfg RunConfig, rng *RNG, parents []ModelRef, base ModelRef) ([]ModelRef, Genome) {
	var usable []CrossoverMethod
	var weights []float64
	for _, m := range cfg.Crossover.Methods {
		info := Methods[m.Name]
		if info.NeedsBase && base == "" {
			continue
		}
		if info.ExactParents > 0 && info.ExactParents != len(parents) {
			continue
		}
		usable = append(usable, m)
		weights = append(weights, m.Weight)
	}
	if len(usable) == 0 {
		// Validation plus init checks make this unreachable; linear always works.
		usable = []CrossoverMethod{{Name: "linear", Weight: 1, OutType: "f32",
			Params: map[string]ParamRange{"weight": {Min: 1, Max: 1, PerModel: true, Anchors: 1}}}}
		weights = []float64{1}
	}
	m := usable[rng.Weighted(weights)]
	info := Methods[m.Name]
	inputs := append([]ModelRef(nil), parents...)
	g := Genome{Method: m.Name, Base: -1, OutType: m.OutType, Global: map[string]Param{}}
	if info.NeedsBase {
		inputs = append(inputs, base)
		g.Base = len(inputs) - 1
	}
	g.PerModel = make([]map[string]Param, len(inputs))
	for i := range g.PerModel {
		g.PerModel[i] = map[string]Param{}
	}
	for _, k := range sortedKeys(m.Params) { // sorted: map order must not reach the PRNG
		r := m.Params[k]
		switch {
		case info.Params[k]:
			g.Global[k] = Param{Anchors: sampleAnchors(rng, r)}
		case r.PerModel:
			for i := range parents { // the base model takes no per-model value
				g.PerModel[i][k] = Param{Anchors: sampleAnchors(rng, r)}
			}
		default: // one value shared by every parent
			v := sampleAnchors(rng, r)
			for i := range parents {
				g.PerModel[i][k] = Param{Anchors: v}
			}
		}
	}
	g.Seed = rng.Uint64()
	return inputs, g
}

func sampleAnchors(rng *RNG, r ParamRange) []float64 {
	n := max(1, r.Anchors)
	a := make([]float64, n)
	for i := range a {
		// Rounded so labels, JSON and merge keys stay short and exact.
		a[i] = round3(rng.Uniform(r.Min, r.Max))
	}
	return a
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// SampleFineTune draws mutation hyperparameters, or nil when the child is
// not mutated this time.
func SampleFineTune(cfg RunConfig, rng *RNG) *FineTuneParams {
	m := cfg.Mutation
	// Always draw the same number of values so one child's choice never
	// shifts the next child's randomness.
	roll := rng.Float64()
	method := m.Methods[rng.Intn(len(m.Methods))]
	lr := rng.LogUniform(m.LR.Min, m.LR.Max)
	steps := rng.IntRange(m.Steps.Min, m.Steps.Max)
	rank := m.Ranks[rng.Intn(len(m.Ranks))]
	ds := ""
	var mix []MixturePart
	if onlyUniformFamilies(m.Datasets) {
		// Synthetic families of equal weight (the demo, and runs recorded
		// before data files): one family, drawn as it always was.
		ds = m.Datasets[rng.Intn(len(m.Datasets))].Family
	} else {
		mix = sampleMixture(m.Datasets, rng)
	}
	seed := rng.Uint64()
	if roll >= *m.Probability {
		return nil
	}
	p := &FineTuneParams{
		Method: method, LR: roundSig(lr, 3), Steps: steps, Dataset: ds, Mixture: mix, Seed: seed,
		Examples: m.Examples, BatchSize: m.BatchSize, CheckpointEvery: m.CheckpointEvery,
	}
	if mix != nil {
		p.ChatTemplate = m.ChatTemplate
	}
	if method == "lora" {
		p.Rank = rank
		p.Alpha = m.Alpha
	}
	return p
}

func onlyUniformFamilies(ds []MutationDataset) bool {
	for _, d := range ds {
		if d.Family == "" || d.Weight != ds[0].Weight {
			return false
		}
	}
	return true
}

// sampleMixture draws one child's dataset mixture: every dataset stays in
// it, its configured weight scaled by a factor drawn log-uniformly in
// [1/2, 2] and the weights normalised, so children train on different blends
// around the configured one (the subset within it comes from the
// fine-tune's seed). One draw per dataset, whatever its weight.
func sampleMixture(ds []MutationDataset, rng *RNG) []MixturePart {
	mix := make([]MixturePart, len(ds))
	total := 0.0
	for i, d := range ds {
		w := d.Weight * rng.LogUniform(0.5, 2)
		mix[i] = MixturePart{Family: d.Family, Path: d.Path, Weight: w}
		total += w
	}
	for i := range mix {
		mix[i].Weight = roundSig(mix[i].Weight/total, 3)
	}
	return mix
}

func roundSig(v float64, digits int) float64 {
	if v == 0 || !finite(v) {
		return v
	}
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', digits, 64), 64)
	return f
}

// PlanGeneration plans cfg.Children children from the ranked population.
// Child IDs start at nextID. It only reads nodes and advances rng.
func PlanGeneration(cfg RunConfig, rng *RNG, nodes []Node, rankedPop []int, base ModelRef, nextID int) []ChildPlan {
	plans := make([]ChildPlan, 0, cfg.Children)
	for i := 0; i < cfg.Children; i++ {
		parents := SelectParents(cfg.Selection, rng, nodes, rankedPop, cfg.Crossover.Parents)
		refs := make([]ModelRef, len(parents))
		for j, id := range parents {
			refs[j] = nodes[id].Ref
		}
		inputs, g := SampleGenome(cfg, rng, refs, base)
		p := ChildPlan{ID: nextID + i, Parents: parents, Inputs: inputs, Genome: g}
		p.MergeLabel = MergeLabel(g, parents)
		if ft := SampleFineTune(cfg, rng); ft != nil {
			p.FineTune = ft
			p.TuneLabel = FineTuneLabel(*ft)
		}
		plans = append(plans, p)
	}
	return plans
}

// MergeLabel is the web UI summary of a merge: "ties(d=0.55) #3 × #7".
func MergeLabel(g Genome, parents []int) string {
	var b strings.Builder
	b.WriteString(g.Method)
	// Global values and per-model values every parent shares read as one
	// parameter ("d=0.5"); values that differ per parent are left out.
	shared := map[string][]float64{}
	for k, p := range g.Global {
		shared[k] = p.Anchors
	}
	if len(g.PerModel) > 0 {
		for k, p := range g.PerModel[0] {
			same := true
			for _, pm := range g.PerModel[1:len(parents)] {
				if q, ok := pm[k]; !ok || !equalFloats(q.Anchors, p.Anchors) {
					same = false
				}
			}
			if same && len(parents) > 1 {
				shared[k] = p.Anchors
			}
		}
	}
	var parts []string
	for _, k := range sortedKeys(shared) {
		name := k
		if s, ok := paramShort[k]; ok {
			name = s
		}
		parts = append(parts, name+"="+anchorsLabel(shared[k]))
	}
	if len(parts) > 0 {
		b.WriteString("(" + strings.Join(parts, ",") + ")")
	}
	for i, id := range parents {
		if i > 0 {
			b.WriteString(" ×")
		}
		fmt.Fprintf(&b, " #%d", id)
	}
	return b.String()
}

func anchorsLabel(a []float64) string {
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = strconv.FormatFloat(v, 'g', 2, 64)
	}
	return strings.Join(s, "→")
}

// FineTuneLabel is the web UI summary of a mutation: "lora r=8 lr=2e-4 20 steps on addition".
func FineTuneLabel(p FineTuneParams) string {
	s := p.Method
	if p.Method == "lora" {
		s += fmt.Sprintf(" r=%d", p.Rank)
	}
	on := p.Dataset
	if len(p.Mixture) > 0 {
		parts := make([]string, len(p.Mixture))
		for i, m := range p.Mixture {
			name := m.Family
			if name == "" {
				name = shortRef(m.Path)
			}
			parts[i] = fmt.Sprintf("%s %.2f", name, m.Weight)
		}
		on = "mix(" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Sprintf("%s lr=%s %d steps on %s", s, strconv.FormatFloat(p.LR, 'g', 2, 64), p.Steps, on)
}

// shortRef is a data reference as a label shows it: a store reference's
// first hex digits, or the file's base name.
func shortRef(ref string) string {
	if IsStoreRef(ref) {
		return ref[:len(StorePrefix)+8]
	}
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// Survivors chooses the next population: the best cfg.Selection.Elitism of
// the current population, then the best children, then (if too few children
// succeeded) the best remaining current members. A model already kept (same
// ref) is not kept twice, so identical merges cannot crowd the population.
func Survivors(cfg RunConfig, nodes []Node, current, children []int) []int {
	cur := ranked(nodes, current)
	kids := ranked(nodes, children)
	seen := map[ModelRef]bool{}
	var out []int
	take := func(ids []int, limit int) {
		for _, id := range ids {
			if len(out) >= limit {
				return
			}
			if seen[nodes[id].Ref] || contains(out, id) {
				continue
			}
			seen[nodes[id].Ref] = true
			out = append(out, id)
		}
	}
	take(cur, min(cfg.Selection.Elitism, cfg.Population))
	take(kids, cfg.Population)
	take(cur, cfg.Population)
	return out
}

func contains(ids []int, id int) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
