// Package report renders EvoMerge runs and experiments as one self-contained
// HTML file each: plots drawn with gonum/plot and embedded as base64 PNGs,
// tables, and the winner's lineage as a tree. Its inputs are plain data
// (this file); callers convert workflow results and compute statistics
// themselves, so the package knows nothing of Temporal or of how a CI was made.
package report

// Run is what the run report shows.
type Run struct {
	Name       string `json:"name"`
	StopReason string `json:"stop_reason,omitempty"`
	Published  string `json:"published,omitempty"`
	UIURL      string `json:"ui_url,omitempty"`
	// Ancestor says what diversity is measured against ("the population's
	// shared base sha256:…").
	Ancestor    string       `json:"ancestor,omitempty"`
	Generations []Generation `json:"generations"`
	HeldOut     *HeldOut     `json:"held_out,omitempty"`
	WinnerID    int          `json:"winner_id"`
	// Lineage is every node of the run (the winner's ancestors are drawn).
	Lineage []Node `json:"lineage,omitempty"`
}

// Generation is one row of a run's history (0 = the initial population).
type Generation struct {
	Generation int     `json:"generation"`
	Best       float64 `json:"best"`
	BestID     int     `json:"best_id"`
	Mean       float64 `json:"mean"`
	Children   int     `json:"children"`
	Dropped    int     `json:"dropped"`
	// Diversity is nil where it was not measured.
	Diversity *Diversity `json:"diversity,omitempty"`
}

// Diversity of one generation's population.
type Diversity struct {
	// Pairwise distances 1 − cos of the task vectors.
	MeanDistance float64 `json:"mean_distance"`
	MinDistance  float64 `json:"min_distance"`
	MaxDistance  float64 `json:"max_distance"`
	// Spread of fitness.
	FitnessStd float64 `json:"fitness_std"`
	FitnessMin float64 `json:"fitness_min"`
	FitnessMax float64 `json:"fitness_max"`
}

// HeldOut compares the winner with the best initial model on the test split.
type HeldOut struct {
	Winner      float64 `json:"winner"`
	InitialBest float64 `json:"initial_best"`
	InitialID   int     `json:"initial_id"`
}

// Node is one model of a run's lineage.
type Node struct {
	ID         int     `json:"id"`
	Generation int     `json:"generation"`
	Parents    []int   `json:"parents,omitempty"`
	Op         string  `json:"op"` // how it was made: merge method, fine-tune, or origin
	Fitness    float64 `json:"fitness"`
	Scored     bool    `json:"scored"`
	Status     string  `json:"status,omitempty"`
}

// Experiment is what the experiment report shows. The statistics are
// computed by the caller; this package only draws and tabulates them.
type Experiment struct {
	Title string `json:"title"`
	// Summary: sentences saying which arm won and whether the difference is
	// distinguishable from noise, shown first.
	Summary []string `json:"summary,omitempty"`
	// Method says how the intervals were computed ("95 % t interval over 5 seeds").
	Method      string       `json:"method,omitempty"`
	Arms        []Arm        `json:"arms"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
}

// Arm is one arm of an experiment over its seeds.
type Arm struct {
	Name  string    `json:"name"`
	Seeds []SeedRun `json:"seeds"`
	// BestCurve: per generation, the mean over seeds of the best fitness and
	// its interval (the CI band of the fitness plot). Empty: no band.
	BestCurve []Band `json:"best_curve,omitempty"`
	// MeanCurve: the same for the population's mean fitness (optional).
	MeanCurve []Band `json:"mean_curve,omitempty"`
	// HeldOut: the winners' held-out score over seeds, mean and interval.
	HeldOut Interval `json:"held_out"`
	// Compute spent by the arm (all seeds) and its budget per seed (0: none).
	TrainTokens  int64 `json:"train_tokens"`
	ScoredTokens int64 `json:"scored_tokens"`
	Budget       int64 `json:"budget,omitempty"`
}

// SeedRun is one child run of an arm.
type SeedRun struct {
	Seed uint64 `json:"seed"`
	Run  string `json:"run,omitempty"` // workflow id
	// Per generation (index = generation).
	Best      []float64 `json:"best"`
	Mean      []float64 `json:"mean,omitempty"`
	Diversity []float64 `json:"diversity,omitempty"` // mean pairwise distance
	HeldOut   float64   `json:"held_out"`
}

// Band is a mean with its interval at one generation.
type Band struct {
	Generation int     `json:"generation"`
	Mean       float64 `json:"mean"`
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"`
}

// Interval is an estimate with its confidence interval over N seeds.
type Interval struct {
	Mean float64 `json:"mean"`
	Lo   float64 `json:"lo"`
	Hi   float64 `json:"hi"`
	N    int     `json:"n"`
}

// Comparison is a paired difference A − B over seeds.
type Comparison struct {
	A    string   `json:"a"`
	B    string   `json:"b"`
	Diff Interval `json:"diff"`
	// Verdict in words ("evomerge better; the CI excludes 0").
	Verdict string `json:"verdict,omitempty"`
}
