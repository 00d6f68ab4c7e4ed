package workflows

import (
	"encoding/json"
	"fmt"
	"time"
)

// The run config's types: one struct per section. Prepare (prepare.go) fills
// the defaults (defaults.go) and checks every field (validate.go); the demo
// preset is in demo.go. A new section gets its type here, its withDefaults and
// validate methods beside the others, and one line in each of RunConfig's.

// RunConfig is one evolution run: the input of the Evolution workflow
// (`temporal workflow start --type Evolution --input @run.json`). Zero fields
// take defaults; Prepare fills them and names every field at fault.
type RunConfig struct {
	Name string `json:"name"`
	// Lineage names the line of runs this run belongs to; its final
	// population is published under it so later runs can continue. Default:
	// Name.
	Lineage     string `json:"lineage,omitempty"`
	Seed        uint64 `json:"seed"`
	Population  int    `json:"population"`
	Generations int    `json:"generations"`
	// Children per generation; default Population - Elitism.
	Children int `json:"children,omitempty"`
	// Parallelism bounds how many child pipelines (and evaluations) run at
	// once.
	Parallelism int `json:"parallelism,omitempty"`
	// Mode is the run's arm (modes.go): evomerge (default), finetune_only,
	// merge_only or random_merge.
	Mode string `json:"mode,omitempty"`

	Selection  Selection      `json:"selection"`
	Crossover  Crossover      `json:"crossover"`
	Mutation   Mutation       `json:"mutation"`
	Fitness    Fitness        `json:"fitness"`
	Init       Init           `json:"init"`
	Publish    *PublishTarget `json:"publish,omitempty"`
	Budgets    Budgets        `json:"budgets,omitempty"`
	TaskQueues TaskQueues     `json:"task_queues,omitempty"`
	Timeouts   Timeouts       `json:"timeouts,omitempty"`
}

// Timeouts and retries of the activities. Heartbeat is how soon a dead
// worker is noticed (every activity heartbeats well within it; a fine-tune's
// checkpoint interval should be longer, so a retry loses at most one
// interval). The start-to-close limits bound one attempt. Failed attempts are
// retried with backoff (1s doubling to 1m) up to MaxAttempts; the types in
// NonRetryableErrorTypes never are.
type Timeouts struct {
	Heartbeat   Duration `json:"heartbeat,omitempty"`    // default 2m
	Init        Duration `json:"init,omitempty"`         // default 12h
	Merge       Duration `json:"merge,omitempty"`        // default 1h
	FineTune    Duration `json:"fine_tune,omitempty"`    // default 12h
	Evaluate    Duration `json:"evaluate,omitempty"`     // default 2h
	Publish     Duration `json:"publish,omitempty"`      // default 1h
	MaxAttempts int      `json:"max_attempts,omitempty"` // default 10
}

// Selection picks parents. Scheme: tournament | roulette | truncation.
// Elitism: how many of the best members survive unchanged each generation.
type Selection struct {
	Scheme         string `json:"scheme"`
	Elitism        int    `json:"elitism"`
	TournamentSize int    `json:"tournament_size,omitempty"`
	// TruncationFraction: the top fraction parents are drawn from.
	TruncationFraction float64 `json:"truncation_fraction,omitempty"`
	// FitnessSharing, when set, ranks parent candidates by shared fitness so
	// near-duplicates (by lineage distance) crowd each other out (modes.go).
	FitnessSharing *FitnessSharing `json:"fitness_sharing,omitempty"`
}

// FitnessSharing: a member's fitness is shared with every member within
// Radius (lineage distance in [0, 1]); Alpha shapes the sharing kernel
// 1 - (d/Radius)^Alpha.
type FitnessSharing struct {
	Radius float64 `json:"radius,omitempty"` // default 0.5
	Alpha  float64 `json:"alpha,omitempty"`  // default 1
}

// Crossover: methods are sampled by weight; each method's parameters are
// sampled within the given ranges.
type Crossover struct {
	Methods []CrossoverMethod `json:"methods"`
	// Parents per child (2 by default; slerp always takes 2).
	Parents int `json:"parents,omitempty"`
}

type CrossoverMethod struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight,omitempty"` // sampling weight, 0 = 1
	// Params: parameter name -> range. Missing parameters take the method's
	// default ranges (MethodInfo).
	Params  map[string]ParamRange `json:"params,omitempty"`
	OutType string                `json:"out_type,omitempty"`
}

// ParamRange is where a genome parameter is sampled. Anchors > 1 samples a
// gradient across layers (one value per anchor); PerModel samples one value
// per parent instead of one for the merge.
type ParamRange struct {
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	PerModel bool    `json:"per_model,omitempty"`
	Anchors  int     `json:"anchors,omitempty"`
}

// Mutation: after the merge, each child is fine-tuned with Probability;
// method, lr (log-uniform), steps, rank and dataset are sampled.
type Mutation struct {
	Probability *float64   `json:"probability,omitempty"`
	Methods     []string   `json:"methods,omitempty"`
	LR          FloatRange `json:"lr,omitempty"`
	Steps       IntRange   `json:"steps,omitempty"`
	Ranks       []int      `json:"ranks,omitempty"`
	Alpha       float64    `json:"alpha,omitempty"`
	// Datasets the children train on, with weights: data files (JSONL, gz
	// JSONL or Parquet of {prompt, completion}, {text} or chat {messages})
	// or synthetic families (the demo; a plain string is a family).
	Datasets []MutationDataset `json:"datasets,omitempty"`
	// ChatTemplate renders chat datasets instead of the model's own
	// tokenizer.chat_template (needed for a model without one).
	ChatTemplate    string `json:"chat_template,omitempty"`
	Examples        int    `json:"examples,omitempty"`
	BatchSize       int    `json:"batch_size,omitempty"` // "batch" before the rename, still read
	CheckpointEvery int    `json:"checkpoint_every,omitempty"`
}

type FloatRange struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

type IntRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// MutationDataset is one dataset of mutation.datasets: a data file Path (a
// DataRef) or a synthetic Family, and its mixture Weight (0 = 1). In JSON a
// plain string is a synthetic family (the form before files).
type MutationDataset struct {
	Path   string  `json:"path,omitempty"`
	Family string  `json:"family,omitempty"`
	Weight float64 `json:"weight,omitempty"`
}

// Fitness: Dev are the tasks selection sees (their weighted mean is a
// model's fitness); Test are scored once at the end on the winner and the
// best initial model (held out, never seen by selection). Dev and test may
// not share items.
//
// Suite, Tasks and HeldOutItems are the form before dev/test (synthetic
// families scored on the validation split, and on the test split with
// HeldOutItems each): still read, and turned into Dev and Test by Prepare.
type Fitness struct {
	Dev  []TaskSpec `json:"dev,omitempty"`
	Test []TaskSpec `json:"test,omitempty"`

	Suite        string     `json:"suite,omitempty"`
	Tasks        []TaskSpec `json:"tasks,omitempty"`
	HeldOutItems int        `json:"held_out_items,omitempty"`
	// Seed draws the dev and test items; default the run's seed. An
	// experiment fixes it so every arm and seed sees the same items.
	Seed *uint64 `json:"seed,omitempty"`
}

// Init: where generation 0 comes from (see InitPopulationInput).
type Init struct {
	ContinueLineage string    `json:"continue_lineage,omitempty"`
	Models          []string  `json:"models,omitempty"`
	Base            string    `json:"base,omitempty"`
	Demo            *DemoSpec `json:"demo,omitempty"`
	// Seed creates generation 0; default the run's seed. An experiment fixes
	// it so every arm and seed starts from the same population.
	Seed *uint64 `json:"seed,omitempty"`
}

// Budgets stop a run cleanly (best model published) when reached. Zero means
// unlimited.
type Budgets struct {
	WallTime    Duration `json:"wall_time,omitempty"`
	TrainTokens int64    `json:"train_tokens,omitempty"`
	EvalItems   int64    `json:"eval_items,omitempty"`
	// Tokens bounds the search's compute: training tokens plus tokens scored
	// on the dev split (the held-out evaluation at the end is not charged).
	// The workflow starts a child only when its estimated cost fits
	// (budget.go), so a run ends within one child's cost of it.
	Tokens int64 `json:"tokens,omitempty"`
}

type TaskQueues struct {
	CPU string `json:"cpu,omitempty"`
	GPU string `json:"gpu,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("90m").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"90m\" or \"2h\": %s", b)
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}

// Selection schemes.
const (
	SchemeTournament = "tournament"
	SchemeRoulette   = "roulette"
	SchemeTruncation = "truncation"
)

// SynthFamilies are the synthetic task families of internal/eval/synth
// (synth.Families(), checked by a test), the defaults of the demo's datasets
// and tasks.
var SynthFamilies = []string{"addition", "comparison", "sequence", "reversal"}
