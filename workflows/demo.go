package workflows

// DemoConfig is the quickstart's run: a tiny demo population of specialists
// evolved for a few generations on the synthetic pack.
func DemoConfig() RunConfig {
	return RunConfig{
		Name:        "demo",
		Seed:        42,
		Population:  8,
		Generations: 6,
		// Specialists trained long enough on enough distinct examples to be clearly better than chance on
		// their family (with 256 examples they overfit and stay near chance), so crossover has skills to
		// combine: about 1.5 minutes for the whole demo on 2 cores.
		Init: Init{Demo: &DemoSpec{
			Model:         demoModel,
			PretrainSteps: 300,
			PretrainLR:    3e-3,
			Families:      SynthFamilies,
			FineTune:      FineTuneParams{Method: FineTuneFull, LR: 3e-3, Steps: 300, Examples: 4000, BatchSize: 16},
		}},
		Mutation: Mutation{Steps: IntRange{Min: 20, Max: 60}},
		Fitness:  Fitness{Dev: demoTasks(SplitValidation, 64), Test: demoTasks(SplitTest, 200)},
	}
}

// demoModel is the demo's tiny llama, also the default of init.demo.model.
var demoModel = TinyModel{Layers: 2, Dim: 64, Heads: 4, KVHeads: 2, FFN: 192, Context: 64}

// demoTasks scores every synthetic family on n items of split.
func demoTasks(split string, n int) []TaskSpec {
	ts := make([]TaskSpec, len(SynthFamilies))
	for i, fam := range SynthFamilies {
		ts[i] = TaskSpec{Source: SourceSynthetic, Family: fam, Split: split, N: n}
	}
	return ts
}
