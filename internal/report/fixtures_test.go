package report

import "fmt"

// sampleRun is a three-generation run with diversity and a lineage.
func sampleRun() Run {
	d := func(m, s float64) *Diversity {
		return &Diversity{MeanDistance: m, MinDistance: m - 0.1, MaxDistance: m + 0.1, FitnessStd: s, FitnessMin: 0.3, FitnessMax: 0.3 + 3*s}
	}
	return Run{
		Name: "demo", StopReason: "completed 3 generations", Published: "file:///tmp/store runs/demo/winner.json",
		Ancestor: "the population's shared base sha256:ab…",
		Generations: []Generation{
			{Generation: 0, Best: 0.40, BestID: 1, Mean: 0.35, Diversity: d(0.9, 0.03)},
			{Generation: 1, Best: 0.45, BestID: 4, Mean: 0.40, Children: 4, Dropped: 1, Diversity: d(0.7, 0.025)},
			{Generation: 2, Best: 0.52, BestID: 7, Mean: 0.47, Children: 4, Diversity: d(0.5, 0.02)},
		},
		HeldOut:  &HeldOut{Winner: 0.50, InitialBest: 0.38, InitialID: 1},
		WinnerID: 7,
		Lineage: []Node{
			{ID: 0, Op: "fine-tune full lr=2e-3 60 steps on addition", Fitness: 0.33, Scored: true},
			{ID: 1, Op: "fine-tune full lr=2e-3 60 steps on copy", Fitness: 0.40, Scored: true},
			{ID: 2, Op: "fine-tune full lr=2e-3 60 steps on reverse", Fitness: 0.36, Scored: true},
			{ID: 4, Generation: 1, Parents: []int{0, 1}, Op: "merge ties(d=0.50) #0 × #1 → fine-tune full lr=1e-3 20 steps on addition", Fitness: 0.45, Scored: true},
			{ID: 5, Generation: 1, Parents: []int{1, 2}, Op: "merge slerp(t=0.40) #1 × #2", Fitness: 0.41, Scored: true},
			{ID: 7, Generation: 2, Parents: []int{4, 5}, Op: "merge dare_ties(d=0.30) #4 × #5 → fine-tune lora lr=1e-3 10 steps on copy", Fitness: 0.52, Scored: true},
		},
	}
}

// sampleExperiment is four arms over five seeds with made-up statistics.
func sampleExperiment() Experiment {
	e := Experiment{
		Title:   "Equal-compute experiment demo",
		Method:  "95 % t intervals over 5 seeds; paired differences over the same seeds",
		Summary: []string{"evomerge wins: +0.04 over finetune_only, CI [0.01, 0.07] excludes 0."},
	}
	for i, name := range []string{"evomerge", "finetune_only", "merge_only", "random_merge"} {
		a := Arm{Name: name, TrainTokens: 100000 + int64(i), ScoredTokens: 50000, Budget: 30000}
		off := 0.02 * float64(i)
		for s := range 5 {
			sr := SeedRun{Seed: uint64(s + 1), Run: fmt.Sprintf("exp-%s-%d", name, s+1), HeldOut: 0.45 - off + 0.01*float64(s)}
			for g := range 4 {
				sr.Best = append(sr.Best, 0.35+0.04*float64(g)-off+0.005*float64(s))
				sr.Mean = append(sr.Mean, 0.30+0.03*float64(g)-off)
				sr.Diversity = append(sr.Diversity, 0.9-0.1*float64(g)-0.05*float64(i))
			}
			a.Seeds = append(a.Seeds, sr)
		}
		for g := range 4 {
			m := 0.36 + 0.04*float64(g) - off
			a.BestCurve = append(a.BestCurve, Band{Generation: g, Mean: m, Lo: m - 0.01, Hi: m + 0.01})
		}
		a.HeldOut = Interval{Mean: 0.47 - off, Lo: 0.45 - off, Hi: 0.49 - off, N: 5}
		e.Arms = append(e.Arms, a)
	}
	e.Comparisons = []Comparison{{A: "evomerge", B: "finetune_only", Diff: Interval{Mean: 0.04, Lo: 0.01, Hi: 0.07, N: 5}, Verdict: "evomerge better; CI excludes 0"}}
	return e
}
