package chaos

import (
	"time"

	"github.com/evomerge/evomerge/workflows"
)

// SmallConfig is a short demo run sized for the harness: a tiny pretrained
// base with specialists, every child fine-tuned long enough to write several
// checkpoints, small evaluations. generations and steps scale the run.
func SmallConfig(name string, seed uint64, generations, steps int) workflows.RunConfig {
	one := 1.0
	return workflows.RunConfig{
		Name: name, Seed: seed, Population: 4, Generations: generations, Parallelism: 2,
		Selection: workflows.Selection{Scheme: workflows.SchemeTournament, Elitism: 1, TournamentSize: 2},
		Crossover: workflows.Crossover{Methods: []workflows.CrossoverMethod{
			{Name: "ties"}, {Name: "slerp"}, {Name: "linear"},
		}},
		Mutation: workflows.Mutation{
			Probability: &one, Methods: []string{"full"},
			LR: workflows.FloatRange{Min: 1e-3, Max: 3e-3}, Steps: workflows.IntRange{Min: steps, Max: steps + steps/2},
			Datasets: []workflows.MutationDataset{{Family: "comparison"}, {Family: "addition"}}, Examples: 64, BatchSize: 4, CheckpointEvery: 4,
		},
		Fitness: workflows.Fitness{Suite: "synth", HeldOutItems: 8, Tasks: []workflows.TaskSpec{
			{Family: "comparison", N: 8}, {Family: "addition", N: 8},
		}},
		Init: workflows.Init{Demo: &workflows.DemoSpec{
			Model:         workflows.TinyModel{Layers: 2, Dim: 64, Heads: 4, KVHeads: 2, FFN: 128, Context: 48},
			PretrainSteps: 40, PretrainLR: 3e-3,
			Families: []string{"comparison", "addition"},
			FineTune: workflows.FineTuneParams{Method: "full", LR: 2e-3, Steps: 8},
		}},
		Publish: &workflows.PublishTarget{Kind: "store", Name: name},
		// The shortest heartbeat timeout the config allows, so a killed
		// worker's activity is retried within seconds.
		Timeouts: workflows.Timeouts{Heartbeat: workflows.Duration(10 * time.Second)},
	}
}
