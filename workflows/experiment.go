package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// An experiment answers "is evolution worth it?": arms (run modes) over one
// base run config, each for several seeds, every arm at the same compute
// budget (training + scored tokens) on the same generation 0 and the same
// dev and test items. The Experiment workflow (experiment_workflow.go) runs
// every arm x seed as a child Evolution workflow.

// Arms: the four run modes, and evomerge with fitness sharing.
const ArmFitnessSharing = "fitness_sharing"

// Arms lists the known arms; DefaultArms are the four of issue 12.
var (
	Arms        = []string{ModeEvoMerge, ModeFineTuneOnly, ModeMergeOnly, ModeRandomMerge, ArmFitnessSharing}
	DefaultArms = []string{ModeEvoMerge, ModeFineTuneOnly, ModeMergeOnly, ModeRandomMerge}
)

// Defaults of an experiment.
const (
	DefaultExperimentSeeds       = 5
	DefaultExperimentMaxParallel = 2
	// experimentGenerations caps a child whose base config names no
	// generation count: the budget ends it long before.
	experimentGenerations = 1000
)

// ExperimentConfig is the Experiment workflow's input (experiment.yaml).
type ExperimentConfig struct {
	Name string `json:"name"`
	// Base is the run every arm starts from. Its seed fixes generation 0
	// and the dev/test items (unless init.seed / fitness.seed say
	// otherwise); each child gets its own evolution seed from Seeds.
	Base RunConfig `json:"base"`
	Arms []string  `json:"arms,omitempty"`
	// Seeds: the evolution seeds, each run by every arm. In a file, a
	// number n means 1..n.
	Seeds  Seeds            `json:"seeds,omitempty"`
	Budget ExperimentBudget `json:"budget"`
	// MaxParallel bounds the child runs in flight at once.
	MaxParallel int `json:"max_parallel,omitempty"`
}

// ExperimentBudget is the compute every child gets: training tokens plus
// dev-split scored tokens (the child's budgets.tokens).
type ExperimentBudget struct {
	Tokens int64 `json:"tokens"`
}

// Seeds is a list of seeds, written as a list or as a count n (1..n).
type Seeds []uint64

func (s *Seeds) UnmarshalJSON(b []byte) error {
	var n int
	if json.Unmarshal(b, &n) == nil {
		if n < 0 || n > 10000 {
			return fmt.Errorf("seeds: a count must be between 0 and 10000, got %d", n)
		}
		*s = make(Seeds, n)
		for i := range *s {
			(*s)[i] = uint64(i + 1)
		}
		return nil
	}
	var list []uint64
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("seeds: want a count or a list of seeds, got %s", b)
	}
	*s = list
	return nil
}

// WithDefaults fills the zero fields (a copy).
func (e ExperimentConfig) WithDefaults() ExperimentConfig {
	if e.Name == "" {
		e.Name = "experiment"
	}
	if e.Arms == nil {
		e.Arms = append([]string(nil), DefaultArms...)
	}
	if e.Seeds == nil {
		for i := 1; i <= DefaultExperimentSeeds; i++ {
			e.Seeds = append(e.Seeds, uint64(i))
		}
	}
	if e.MaxParallel == 0 {
		e.MaxParallel = DefaultExperimentMaxParallel
	}
	return e
}

// PrepareExperiment fills defaults and checks every field, the base run as
// each arm would run it included; the error is a *ConfigError naming them
// (base run fields as base.<field>).
func PrepareExperiment(e ExperimentConfig) (ExperimentConfig, error) {
	e = e.WithDefaults()
	p := &problems{}
	if !runNameRE.MatchString(e.Name) || len(e.Name) > 60 {
		p.bad("name", "must be 1-60 characters of letters, digits, '.', '_' or '-', starting with a letter or digit; got %q", e.Name)
	}
	if len(e.Seeds) < 2 {
		p.bad("seeds", "needs at least 2 seeds (5 or more recommended) to tell a difference from noise, got %d", len(e.Seeds))
	}
	for i, s := range e.Seeds {
		if slices.Index(e.Seeds, s) != i {
			p.bad(fmt.Sprintf("seeds[%d]", i), "seed %d is listed twice", s)
		}
	}
	if len(e.Arms) == 0 {
		p.bad("arms", "must name at least one arm (%s)", strings.Join(Arms, ", "))
	}
	for i, a := range e.Arms {
		switch {
		case !slices.Contains(Arms, a):
			p.bad(fmt.Sprintf("arms[%d]", i), "unknown arm %q (known: %s)", a, strings.Join(Arms, ", "))
		case slices.Index(e.Arms, a) != i:
			p.bad(fmt.Sprintf("arms[%d]", i), "arm %q is listed twice", a)
		}
	}
	if e.Budget.Tokens <= 0 {
		p.bad("budget.tokens", "must be positive: the training + scored tokens every arm and seed gets, got %d", e.Budget.Tokens)
	}
	if e.MaxParallel < 1 || e.MaxParallel > 1000 {
		p.bad("max_parallel", "must be between 1 and 1000, got %d", e.MaxParallel)
	}
	if len(p.errs) == 0 {
		seen := map[string]bool{}
		for _, arm := range e.Arms {
			_, err := Prepare(e.ChildConfig(arm, e.Seeds[0]))
			var ce *ConfigError
			if err == nil || !errors.As(err, &ce) {
				continue
			}
			for _, f := range ce.Fields {
				field := "base." + f.Field
				if f.Field == "budgets.tokens" {
					field = "budget.tokens"
				}
				if key := field + f.Problem; !seen[key] {
					seen[key] = true
					p.bad(field, "%s", f.Problem)
				}
			}
		}
	}
	if len(p.errs) > 0 {
		return ExperimentConfig{}, &ConfigError{Fields: p.errs}
	}
	return e, nil
}

// ChildRunName is the run name of one arm x seed; ChildWorkflowID its
// workflow ID (a run's usual "evo-<name>", so starter watch finds it).
func ChildRunName(experiment, arm string, seed uint64) string {
	return fmt.Sprintf("%s-%s-s%d", experiment, arm, seed)
}

func ChildWorkflowID(experiment, arm string, seed uint64) string {
	return "evo-" + ChildRunName(experiment, arm, seed)
}

// ChildConfig is the run of one arm and seed: the base run with the arm's
// mode, the seed, the experiment's budget, generation 0 and the items fixed
// by the base's seed, its own name, lineage and published winner.
func (e ExperimentConfig) ChildConfig(arm string, seed uint64) RunConfig {
	c := e.Base
	shared := e.Base.Seed
	initSeed, itemSeed := shared, shared
	if e.Base.Init.Seed != nil {
		initSeed = *e.Base.Init.Seed
	}
	if e.Base.Fitness.Seed != nil {
		itemSeed = *e.Base.Fitness.Seed
	}
	c.Init.Seed, c.Fitness.Seed = &initSeed, &itemSeed
	c.Name = ChildRunName(e.Name, arm, seed)
	c.Lineage = c.Name
	c.Seed = seed
	c.Mode = arm
	c.Selection.FitnessSharing = nil // only the sharing arm shares
	if arm == ArmFitnessSharing {
		c.Mode = ModeEvoMerge
		fs := FitnessSharing{}
		if e.Base.Selection.FitnessSharing != nil {
			fs = *e.Base.Selection.FitnessSharing
		}
		c.Selection.FitnessSharing = &fs
	}
	c.Budgets.Tokens = e.Budget.Tokens
	if c.Generations == 0 {
		c.Generations = experimentGenerations
	}
	c.Publish = &PublishTarget{Kind: "store", Name: c.Name}
	return c
}

// ChildOutcome is one arm x seed's result as the experiment records it.
type ChildOutcome struct {
	Arm        string `json:"arm"`
	Seed       uint64 `json:"seed"`
	WorkflowID string `json:"workflow_id"`
	Done       bool   `json:"done"`
	Error      string `json:"error,omitempty"`
	// HeldOut is the winner's score on the test split; InitialHeldOut the
	// best initial model's; DevBest the winner's dev fitness.
	HeldOut        float64 `json:"held_out"`
	InitialHeldOut float64 `json:"initial_held_out"`
	DevBest        float64 `json:"dev_best"`
	WinnerID       int     `json:"winner_id"`
	Generations    int     `json:"generations"`
	TrainTokens    int64   `json:"train_tokens"`
	ScoredTokens   int64   `json:"scored_tokens"`
	HeldOutTokens  int64   `json:"held_out_tokens"`
	StopReason     string  `json:"stop_reason,omitempty"`
	// History: the child's per-generation record (best/mean fitness and
	// tokens spent), for plots.
	History []GenStats `json:"history,omitempty"`
}

// SharedWork is what the experiment computed once for every child: the
// common generation 0 and its dev evaluation.
type SharedWork struct {
	Population []ModelRef `json:"population"`
	// Gen0Tokens is what scoring generation 0 on the dev split costs (each
	// child is charged it too, as a run on its own would be); EvalTokens
	// the most one evaluation cost.
	Gen0Tokens int64 `json:"gen0_tokens"`
	EvalTokens int64 `json:"eval_tokens"`
}

// ExperimentResult is the finished experiment: one outcome per arm x seed,
// in arm-major order of Arms and Seeds.
type ExperimentResult struct {
	Name         string         `json:"name"`
	Arms         []string       `json:"arms"`
	Seeds        []uint64       `json:"seeds"`
	BudgetTokens int64          `json:"budget_tokens"`
	Shared       SharedWork     `json:"shared"`
	Children     []ChildOutcome `json:"children"`
	// PeakParallel is the most children that ran at once (<= max_parallel).
	PeakParallel int `json:"peak_parallel"`
	// Reused counts the children that had finished under an earlier
	// execution of the experiment: their results were read, not rerun.
	Reused int `json:"reused,omitempty"`
	// Report links the experiment's HTML report in the store (also in the memo).
	Report string `json:"report,omitempty"`
}

// ExperimentStatus answers the experiment's status query.
type ExperimentStatus struct {
	Name     string         `json:"name"`
	Phase    string         `json:"phase"`
	Done     int            `json:"done"`
	Running  int            `json:"running"`
	Total    int            `json:"total"`
	Children []ChildOutcome `json:"children"`
}
