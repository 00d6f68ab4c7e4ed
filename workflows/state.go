package workflows

import (
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"
)

// Node statuses in the lineage.
const (
	StatusAlive   = "alive"   // in the current population
	StatusRetired = "retired" // was in a population, did not survive
	StatusDropped = "dropped" // a child that failed (diverged, eval failed, ...)
	StatusCulled  = "culled"  // a child that was scored but not selected
	StatusSkipped = "skipped" // a planned child not made (or its fine-tune not evaluated): the compute budget could not cover it
)

// Node is one model ever seen by the run: the lineage is the list of nodes,
// indexed by ID.
type Node struct {
	ID         int      `json:"id"`
	Ref        ModelRef `json:"ref,omitempty"`
	Generation int      `json:"generation"`
	Parents    []int    `json:"parents,omitempty"`
	// Op is how the node was made ("merge ties(d=0.50) #3 × #7 → fine-tune
	// full lr=1e-3 20 steps on addition", or the init origin).
	Op      string      `json:"op"`
	Scored  bool        `json:"scored"`
	Fitness float64     `json:"fitness"`
	Tasks   []TaskScore `json:"tasks,omitempty"`
	Status  string      `json:"status"`
	Reason  string      `json:"reason,omitempty"`
}

// GenStats summarises one generation for the final table (generation 0 is
// the initial population).
type GenStats struct {
	Generation int     `json:"generation"`
	Best       float64 `json:"best"`
	BestID     int     `json:"best_id"`
	Mean       float64 `json:"mean"`
	// BestInitial is the best fitness of generation 0, repeated so every row
	// compares against it.
	BestInitial float64 `json:"best_initial"`
	Children    int     `json:"children"`
	Dropped     int     `json:"dropped"`
	// Compute spent by the end of this generation (cumulative): training
	// tokens and dev-split scored tokens.
	TrainTokens  int64 `json:"train_tokens,omitempty"`
	ScoredTokens int64 `json:"scored_tokens,omitempty"`
	Skipped      int   `json:"skipped,omitempty"`
	// Diversity of the population after the generation; nil when it was
	// not measured (runs recorded before, or the measurement failed).
	Diversity *GenDiversity `json:"diversity,omitempty"`
}

// GenDiversity is a population's diversity: pairwise distances 1 − cos of
// the task vectors from the common ancestor, and the spread of fitness.
type GenDiversity struct {
	MeanDistance float64 `json:"mean_distance"`
	MinDistance  float64 `json:"min_distance"`
	MaxDistance  float64 `json:"max_distance"`
	// Ancestor the distances are measured from ("" = the models' centroid).
	Ancestor    ModelRef `json:"ancestor,omitempty"`
	FitnessMean float64  `json:"fitness_mean"`
	FitnessStd  float64  `json:"fitness_std"`
	FitnessMin  float64  `json:"fitness_min"`
	FitnessMax  float64  `json:"fitness_max"`
}

// RunState is what the workflow carries through continue-as-new.
type RunState struct {
	// Generation is the number of completed generations (0 = only the
	// initial population exists).
	Generation  int        `json:"generation"`
	RNG         RNG        `json:"rng"`
	Population  []int      `json:"population"`
	Nodes       []Node     `json:"nodes"`
	Base        ModelRef   `json:"base,omitempty"`
	History     []GenStats `json:"history,omitempty"`
	InitialBest int        `json:"initial_best"`
	StartedAt   time.Time  `json:"started_at"`
	TrainTokens int64      `json:"train_tokens"`
	EvalItems   int64      `json:"eval_items"`
	// ScoredTokens: tokens scored on the dev split (charged to
	// budgets.tokens); HeldOutTokens: on the test split (not charged).
	ScoredTokens  int64 `json:"scored_tokens,omitempty"`
	HeldOutTokens int64 `json:"held_out_tokens,omitempty"`
	// Cost estimates the budget gate learns from what it has seen.
	Costs *CostEstimates `json:"costs,omitempty"`
}

// EvolutionInput is the workflow's input: a run config (fields inline, so a
// plain run.json is a valid input) plus the state continue-as-new carries.
type EvolutionInput struct {
	RunConfig
	State *RunState `json:"state,omitempty"`
}

// HeldOut compares the winner with the best initial model on the held-out
// (test) split.
type HeldOut struct {
	Winner      float64 `json:"winner"`
	InitialBest float64 `json:"initial_best"`
	InitialID   int     `json:"initial_id"`
	Beat        bool    `json:"beat"`
}

// RunResult is what a finished run returns.
type RunResult struct {
	Run        string     `json:"run"`
	Winner     Node       `json:"winner"`
	Published  string     `json:"published"`
	History    []GenStats `json:"history"`
	HeldOut    HeldOut    `json:"held_out"`
	StopReason string     `json:"stop_reason"`
	Dropped    int        `json:"dropped"`
	// Compute: training tokens and dev-split scored tokens (what
	// budgets.tokens bounds), and held-out scored tokens (not charged).
	Mode          string `json:"mode,omitempty"`
	Generations   int    `json:"generations,omitempty"`
	TrainTokens   int64  `json:"train_tokens,omitempty"`
	ScoredTokens  int64  `json:"scored_tokens,omitempty"`
	HeldOutTokens int64  `json:"held_out_tokens,omitempty"`
	BudgetTokens  int64  `json:"budget_tokens,omitempty"`
	// Report links the run's HTML report in the store (also in the memo).
	Report string `json:"report,omitempty"`
}

// Status is the answer to the "status" query.
type Status struct {
	Run           string     `json:"run"`
	Generation    int        `json:"generation"` // generation in progress (completed + 1 while running)
	Generations   int        `json:"generations"`
	Phase         string     `json:"phase"`
	ChildrenDone  int        `json:"children_done"`
	ChildrenTotal int        `json:"children_total"`
	Best          *Node      `json:"best,omitempty"`
	Stopping      bool       `json:"stopping"`
	StopReason    string     `json:"stop_reason,omitempty"`
	History       []GenStats `json:"history,omitempty"`
	TrainTokens   int64      `json:"train_tokens"`
	EvalItems     int64      `json:"eval_items"`
	ScoredTokens  int64      `json:"scored_tokens,omitempty"`
	BudgetTokens  int64      `json:"budget_tokens,omitempty"`
}

// Query, signal and update names.
const (
	QueryStatus      = "status"
	QueryLeaderboard = "leaderboard"
	QueryLineage     = "lineage"
	SignalStop       = "stop"
	UpdateStop       = "stop"
)

// Search attributes the workflow upserts (registered by infra/devserver), by
// name and as the typed keys the SDK takes; the only definition of both.
const (
	SearchAttrRun         = "EvoRun"
	SearchAttrGeneration  = "EvoGeneration"
	SearchAttrBestFitness = "EvoBestFitness"
)

var (
	SearchRun         = temporal.NewSearchAttributeKeyKeyword(SearchAttrRun)
	SearchGeneration  = temporal.NewSearchAttributeKeyInt64(SearchAttrGeneration)
	SearchBestFitness = temporal.NewSearchAttributeKeyFloat64(SearchAttrBestFitness)
)

// ranked returns the scored IDs among ids, best first (ties by lower ID so
// the order is total and deterministic).
func ranked(nodes []Node, ids []int) []int {
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		if nodes[id].Scored {
			out = append(out, id)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := nodes[out[i]], nodes[out[j]]
		if a.Fitness != b.Fitness {
			return a.Fitness > b.Fitness
		}
		return a.ID < b.ID
	})
	return out
}

// leaderboard is the population, best first.
func (s *RunState) leaderboard() []Node {
	ids := ranked(s.Nodes, s.Population)
	out := make([]Node, len(ids))
	for i, id := range ids {
		out[i] = s.Nodes[id]
	}
	return out
}

// bestOfLineage keeps the best size members of a continued lineage by the
// fitness it recorded (ties keep the recorded order), so a run continues
// from the strongest of a larger population.
func bestOfLineage(members []InitMember, size int) []InitMember {
	out := append([]InitMember(nil), members...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].LineageFitness > out[j].LineageFitness })
	if len(out) > size {
		out = out[:size]
	}
	return out
}
