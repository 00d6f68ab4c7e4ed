package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
)

// RunConfig is one evolution run: the input of the Evolution workflow
// (`temporal workflow start --type Evolution --input @run.json`). Zero fields
// take defaults (WithDefaults); Validate names the field at fault.
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
	Probability     *float64   `json:"probability,omitempty"`
	Methods         []string   `json:"methods,omitempty"`
	LR              FloatRange `json:"lr,omitempty"`
	Steps           IntRange   `json:"steps,omitempty"`
	Ranks           []int      `json:"ranks,omitempty"`
	Alpha           float64    `json:"alpha,omitempty"`
	Datasets        []string   `json:"datasets,omitempty"`
	Examples        int        `json:"examples,omitempty"`
	Batch           int        `json:"batch,omitempty"`
	CheckpointEvery int        `json:"checkpoint_every,omitempty"`
}

type FloatRange struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

type IntRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Fitness: the weighted mean of task scores on the dev split. HeldOutItems
// per task are used for the final held-out comparison (test split).
type Fitness struct {
	Suite        string     `json:"suite,omitempty"`
	Tasks        []TaskSpec `json:"tasks"`
	HeldOutItems int        `json:"held_out_items,omitempty"`
}

// Init: where generation 0 comes from (see InitPopulationInput).
type Init struct {
	ContinueLineage string    `json:"continue_lineage,omitempty"`
	Models          []string  `json:"models,omitempty"`
	Base            string    `json:"base,omitempty"`
	Demo            *DemoSpec `json:"demo,omitempty"`
}

// Budgets stop a run cleanly (best model published) when reached. Zero means
// unlimited.
type Budgets struct {
	WallTime    Duration `json:"wall_time,omitempty"`
	TrainTokens int64    `json:"train_tokens,omitempty"`
	EvalItems   int64    `json:"eval_items,omitempty"`
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

// MethodInfo describes what the workflow knows about a merge method of
// internal/merge: whether it needs a base model, how many parents it takes,
// which parameters it accepts (and whether the engine reads each once for the
// merge or once per model), and the ranges sampled when the config names none.
type MethodInfo struct {
	NeedsBase bool
	// ExactParents: 0 = any number >= 2.
	ExactParents int
	// Params: every parameter the engine accepts; true = global (one value
	// for the merge), false = per model (one value per parent).
	Params map[string]bool
	// Defaults: ranges sampled when the run config gives none.
	Defaults map[string]ParamRange
}

// Short names for summaries ("density" -> "d").
var paramShort = map[string]string{"density": "d", "weight": "w", "t": "t", "lambda": "λ", "gamma": "γ"}

func taskVectorMethod(density bool, gamma bool) MethodInfo {
	m := MethodInfo{NeedsBase: true,
		Params:   map[string]bool{"weight": false, "lambda": true},
		Defaults: map[string]ParamRange{"weight": {Min: 0.3, Max: 1, PerModel: true}}}
	if density {
		m.Params["density"] = false
		m.Defaults["density"] = ParamRange{Min: 0.3, Max: 0.9}
	}
	if gamma {
		m.Params["gamma"] = false
	}
	return m
}

// Methods are the merge methods internal/merge implements that the workflow
// can sample.
var Methods = map[string]MethodInfo{
	"linear": {Params: map[string]bool{"weight": false},
		Defaults: map[string]ParamRange{"weight": {Min: 0.2, Max: 1, PerModel: true}}},
	"slerp": {ExactParents: 2, Params: map[string]bool{"t": true},
		Defaults: map[string]ParamRange{"t": {Min: 0.2, Max: 0.8, Anchors: 3}}},
	"task_arithmetic":  taskVectorMethod(false, false),
	"ties":             taskVectorMethod(true, false),
	"dare_ties":        taskVectorMethod(true, false),
	"dare_linear":      taskVectorMethod(true, false),
	"breadcrumbs":      taskVectorMethod(true, true),
	"breadcrumbs_ties": taskVectorMethod(true, true),
}

// Selection schemes.
const (
	SchemeTournament = "tournament"
	SchemeRoulette   = "roulette"
	SchemeTruncation = "truncation"
)

// Synthetic task families used by the defaults (internal/eval/synth).
var DefaultFamilies = []string{"addition", "comparison", "sequence", "reversal"}

var runNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

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
			Model:         TinyModel{Layers: 2, Dim: 64, Heads: 4, KVHeads: 2, FF: 192, Context: 64},
			PretrainSteps: 300,
			PretrainLR:    3e-3,
			Families:      DefaultFamilies,
			FineTune:      FineTuneParams{Method: "full", LR: 3e-3, Steps: 300, Examples: 4000, Batch: 16},
		}},
		Mutation: Mutation{Steps: IntRange{Min: 20, Max: 60}},
		Fitness: Fitness{Tasks: []TaskSpec{
			{Family: "addition", Items: 64}, {Family: "comparison", Items: 64},
			{Family: "sequence", Items: 64}, {Family: "reversal", Items: 64},
		}, HeldOutItems: 200},
	}
}

// WithDefaults returns a copy of c with every zero field filled.
func (c RunConfig) WithDefaults() RunConfig {
	if c.Name == "" {
		c.Name = "run"
	}
	if c.Lineage == "" {
		c.Lineage = c.Name
	}
	if c.Population == 0 {
		c.Population = 8
	}
	if c.Generations == 0 {
		c.Generations = 6
	}
	s := &c.Selection
	if s.Scheme == "" {
		s.Scheme = SchemeTournament
	}
	if s.Elitism == 0 && c.Population > 2 {
		s.Elitism = 2
	}
	if s.TournamentSize == 0 {
		s.TournamentSize = 3
	}
	if s.TruncationFraction == 0 {
		s.TruncationFraction = 0.5
	}
	if c.Children == 0 {
		c.Children = c.Population - s.Elitism
	}
	if c.Parallelism == 0 {
		c.Parallelism = 4
	}
	x := &c.Crossover
	if x.Methods == nil { // nil = not given; an explicit [] is rejected by Validate
		x.Methods = []CrossoverMethod{{Name: "ties"}, {Name: "dare_ties"}, {Name: "slerp"}, {Name: "linear"}}
		if c.Init.Base == "" && c.Init.Demo == nil && c.Init.ContinueLineage == "" {
			// Without a base model only base-free methods can run.
			x.Methods = []CrossoverMethod{{Name: "slerp"}, {Name: "linear"}}
		}
	}
	if x.Parents == 0 {
		x.Parents = 2
	}
	// Copy before filling so defaults never write into the caller's slices/maps.
	methods := make([]CrossoverMethod, len(x.Methods))
	for i, m := range x.Methods {
		if m.Weight == 0 {
			m.Weight = 1
		}
		if m.OutType == "" {
			m.OutType = "f32"
		}
		params := map[string]ParamRange{}
		if info, ok := Methods[m.Name]; ok {
			for k, v := range info.Defaults {
				params[k] = v
			}
		}
		for k, v := range m.Params {
			params[k] = v
		}
		for k, v := range params {
			if v.Anchors == 0 {
				v.Anchors = 1
			}
			params[k] = v
		}
		m.Params = params
		methods[i] = m
	}
	x.Methods = methods
	m := &c.Mutation
	if m.Probability == nil {
		p := 0.5
		m.Probability = &p
	}
	if m.Methods == nil {
		m.Methods = []string{"full"}
	}
	if m.LR == (FloatRange{}) {
		m.LR = FloatRange{Min: 5e-4, Max: 3e-3}
	}
	if m.Steps == (IntRange{}) {
		m.Steps = IntRange{Min: 10, Max: 30}
	}
	if m.Ranks == nil {
		m.Ranks = []int{4, 8}
	}
	if m.Alpha == 0 {
		m.Alpha = 16
	}
	if m.Datasets == nil {
		m.Datasets = append([]string(nil), DefaultFamilies...)
	}
	f := &c.Fitness
	if f.Suite == "" {
		f.Suite = "synth"
	}
	if f.Tasks == nil {
		for _, fam := range DefaultFamilies {
			f.Tasks = append(f.Tasks, TaskSpec{Family: fam})
		}
	}
	tasks := make([]TaskSpec, len(f.Tasks))
	for i, t := range f.Tasks {
		if t.Weight == 0 {
			t.Weight = 1
		}
		if t.Items == 0 {
			t.Items = 32
		}
		tasks[i] = t
	}
	f.Tasks = tasks
	if f.HeldOutItems == 0 {
		f.HeldOutItems = 64
	}
	if c.TaskQueues.CPU == "" {
		c.TaskQueues.CPU = TaskQueueCPU
	}
	if c.TaskQueues.GPU == "" {
		c.TaskQueues.GPU = TaskQueueGPU
	}
	t := &c.Timeouts
	for _, d := range []struct {
		v   *Duration
		def time.Duration
	}{{&t.Heartbeat, 2 * time.Minute}, {&t.Init, 12 * time.Hour}, {&t.Merge, time.Hour},
		{&t.FineTune, 12 * time.Hour}, {&t.Evaluate, 2 * time.Hour}, {&t.Publish, time.Hour}} {
		if *d.v == 0 {
			*d.v = Duration(d.def)
		}
	}
	if t.MaxAttempts == 0 {
		t.MaxAttempts = 10
	}
	if c.Publish == nil {
		c.Publish = &PublishTarget{Kind: "store", Name: c.Name}
	} else {
		p := *c.Publish
		if p.Kind == "" {
			p.Kind = "store"
		}
		if p.Name == "" && p.Kind != "path" {
			p.Name = c.Name
		}
		c.Publish = &p
	}
	if d := c.Init.Demo; d != nil {
		dd := *d
		if dd.Model == (TinyModel{}) {
			dd.Model = DemoConfig().Init.Demo.Model
		}
		if dd.PretrainSteps == 0 {
			dd.PretrainSteps = 150
		}
		if dd.PretrainLR == 0 {
			dd.PretrainLR = 3e-3
		}
		if len(dd.Families) == 0 {
			dd.Families = append([]string(nil), DefaultFamilies...)
		}
		if dd.FineTune.Method == "" {
			dd.FineTune.Method = "full"
		}
		if dd.FineTune.LR == 0 {
			dd.FineTune.LR = 2e-3
		}
		if dd.FineTune.Steps == 0 {
			dd.FineTune.Steps = 60
		}
		c.Init.Demo = &dd
	}
	return c
}

// FieldError is one problem with one config field.
type FieldError struct {
	Field   string // dotted JSON path, e.g. "selection.elitism"
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ConfigError collects every field problem of a config.
type ConfigError struct{ Fields []*FieldError }

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("invalid run config")
	for _, f := range e.Fields {
		b.WriteString("\n  ")
		b.WriteString(f.Error())
	}
	return b.String()
}

// Validate checks a config that went through WithDefaults and returns a
// *ConfigError naming every field at fault, or nil.
func (c RunConfig) Validate() error {
	var errs []*FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if !runNameRE.MatchString(c.Name) {
		bad("name", "must be 1-100 characters of letters, digits, '.', '_' or '-', starting with a letter or digit; got %q", c.Name)
	}
	if c.Lineage != "" && !runNameRE.MatchString(c.Lineage) {
		bad("lineage", "must be 1-100 characters of letters, digits, '.', '_' or '-'; got %q", c.Lineage)
	}
	if c.Population < 2 {
		bad("population", "must be at least 2, got %d", c.Population)
	} else if c.Population > 1000 {
		bad("population", "must be at most 1000, got %d", c.Population)
	}
	if c.Generations < 1 || c.Generations > 100000 {
		bad("generations", "must be between 1 and 100000, got %d", c.Generations)
	}
	if c.Parallelism < 1 || c.Parallelism > 1000 {
		bad("parallelism", "must be between 1 and 1000, got %d", c.Parallelism)
	}
	s := c.Selection
	switch s.Scheme {
	case SchemeTournament, SchemeRoulette, SchemeTruncation:
	default:
		bad("selection.scheme", "unknown scheme %q (want tournament, roulette or truncation)", s.Scheme)
	}
	if s.Elitism < 0 {
		bad("selection.elitism", "must not be negative, got %d", s.Elitism)
	} else if c.Population >= 2 && s.Elitism >= c.Population {
		bad("selection.elitism", "must be less than population (%d), got %d", c.Population, s.Elitism)
	}
	if s.TournamentSize < 1 {
		bad("selection.tournament_size", "must be at least 1, got %d", s.TournamentSize)
	} else if c.Population >= 2 && s.TournamentSize > c.Population {
		bad("selection.tournament_size", "must be at most population (%d), got %d", c.Population, s.TournamentSize)
	}
	if !(s.TruncationFraction > 0 && s.TruncationFraction <= 1) {
		bad("selection.truncation_fraction", "must be in (0, 1], got %v", s.TruncationFraction)
	}
	if c.Children < 1 || c.Children > 10000 {
		bad("children", "must be between 1 and 10000, got %d", c.Children)
	} else if c.Population >= 2 && s.Elitism >= 0 && c.Children < c.Population-s.Elitism {
		bad("children", "must be at least population - elitism (%d) so the population can be refilled, got %d",
			c.Population-s.Elitism, c.Children)
	}
	x := c.Crossover
	if len(x.Methods) == 0 {
		bad("crossover.methods", "must name at least one merge method")
	}
	if x.Parents < 2 {
		bad("crossover.parents", "must be at least 2, got %d", x.Parents)
	} else if c.Population >= 2 && x.Parents > c.Population {
		bad("crossover.parents", "must be at most population (%d), got %d", c.Population, x.Parents)
	}
	hasBase := c.Init.Base != "" || c.Init.Demo != nil || c.Init.ContinueLineage != ""
	for i, m := range x.Methods {
		field := fmt.Sprintf("crossover.methods[%d]", i)
		info, ok := Methods[m.Name]
		if !ok {
			bad(field+".name", "unknown merge method %q (known: %s)", m.Name, strings.Join(methodNames(), ", "))
			continue
		}
		if info.NeedsBase && !hasBase {
			bad(field+".name", "method %q needs a base model: set init.base, init.demo or init.continue_lineage", m.Name)
		}
		if info.ExactParents > 0 && x.Parents != info.ExactParents {
			bad(field+".name", "method %q takes exactly %d parents but crossover.parents is %d", m.Name, info.ExactParents, x.Parents)
		}
		if !(m.Weight > 0) || math.IsInf(m.Weight, 0) {
			bad(field+".weight", "must be a positive number, got %v", m.Weight)
		}
		switch m.OutType {
		case "f32", "f16":
		default:
			bad(field+".out_type", "must be f32 or f16, got %q", m.OutType)
		}
		for _, k := range sortedKeys(m.Params) {
			r := m.Params[k]
			pf := field + ".params." + k
			if _, known := info.Params[k]; !known {
				bad(pf, "method %q has no parameter %q (known: %s)", m.Name, k, strings.Join(sortedKeys(info.Params), ", "))
				continue
			}
			if r.PerModel && info.Params[k] {
				bad(pf+".per_model", "parameter %q of method %q is global; it cannot vary per model", k, m.Name)
			}
			if (k == "density" || k == "t" || k == "gamma") && (r.Min < 0 || r.Max > 1) {
				bad(pf, "%s must stay within [0, 1], got min=%v max=%v", k, r.Min, r.Max)
			}
			if !finite(r.Min) || !finite(r.Max) || r.Min > r.Max {
				bad(pf, "needs finite min <= max, got min=%v max=%v", r.Min, r.Max)
			}
			if r.Anchors < 1 || r.Anchors > 64 {
				bad(pf+".anchors", "must be between 1 and 64, got %d", r.Anchors)
			}
		}
	}
	mu := c.Mutation
	if mu.Probability == nil || !(*mu.Probability >= 0 && *mu.Probability <= 1) {
		bad("mutation.probability", "must be in [0, 1]")
	}
	if len(mu.Methods) == 0 {
		bad("mutation.methods", "must name at least one fine-tune method (full or lora)")
	}
	if len(mu.Ranks) == 0 {
		bad("mutation.ranks", "must list at least one LoRA rank")
	}
	for i, m := range mu.Methods {
		if m != "full" && m != "lora" {
			bad(fmt.Sprintf("mutation.methods[%d]", i), "unknown fine-tune method %q (want full or lora)", m)
		}
	}
	if !(mu.LR.Min > 0) || !finite(mu.LR.Max) || mu.LR.Min > mu.LR.Max {
		bad("mutation.lr", "needs 0 < min <= max, got min=%v max=%v", mu.LR.Min, mu.LR.Max)
	}
	if mu.Steps.Min < 1 || mu.Steps.Min > mu.Steps.Max || mu.Steps.Max > 1_000_000 {
		bad("mutation.steps", "needs 1 <= min <= max <= 1000000, got min=%d max=%d", mu.Steps.Min, mu.Steps.Max)
	}
	for i, r := range mu.Ranks {
		if r < 1 || r > 4096 {
			bad(fmt.Sprintf("mutation.ranks[%d]", i), "must be between 1 and 4096, got %d", r)
		}
	}
	if !(mu.Alpha > 0) || !finite(mu.Alpha) {
		bad("mutation.alpha", "must be positive, got %v", mu.Alpha)
	}
	if len(mu.Datasets) == 0 {
		bad("mutation.datasets", "must name at least one dataset")
	}
	for i, d := range mu.Datasets {
		if strings.TrimSpace(d) == "" {
			bad(fmt.Sprintf("mutation.datasets[%d]", i), "must not be empty")
		}
	}
	if mu.Examples < 0 || mu.Batch < 0 || mu.CheckpointEvery < 0 {
		bad("mutation", "examples, batch and checkpoint_every must not be negative")
	}
	f := c.Fitness
	if len(f.Tasks) == 0 {
		bad("fitness.tasks", "must name at least one task")
	}
	for i, t := range f.Tasks {
		tf := fmt.Sprintf("fitness.tasks[%d]", i)
		if strings.TrimSpace(t.Family) == "" {
			bad(tf+".family", "must not be empty")
		}
		if !(t.Weight > 0) || !finite(t.Weight) {
			bad(tf+".weight", "must be positive, got %v", t.Weight)
		}
		if t.Items < 1 || t.Items > 1_000_000 {
			bad(tf+".items", "must be between 1 and 1000000, got %d", t.Items)
		}
	}
	if f.HeldOutItems < 1 || f.HeldOutItems > 1_000_000 {
		bad("fitness.held_out_items", "must be between 1 and 1000000, got %d", f.HeldOutItems)
	}
	in := c.Init
	if in.Demo == nil && len(in.Models) == 0 && in.ContinueLineage == "" {
		bad("init", "needs models, demo or continue_lineage to create generation 0")
	}
	if in.Demo != nil && len(in.Models) > 0 {
		bad("init.models", "cannot be combined with init.demo")
	}
	for i, m := range in.Models {
		if strings.TrimSpace(m) == "" {
			bad(fmt.Sprintf("init.models[%d]", i), "must not be empty")
		}
	}
	if len(in.Models) == 1 {
		bad("init.models", "needs at least 2 models to cross over, got 1")
	}
	if in.ContinueLineage != "" && !runNameRE.MatchString(in.ContinueLineage) {
		bad("init.continue_lineage", "must be a lineage name, got %q", in.ContinueLineage)
	}
	if d := in.Demo; d != nil {
		mm := d.Model
		if mm.Layers < 1 || mm.Dim < 1 || mm.Heads < 1 || mm.FF < 1 || mm.Context < 2 ||
			mm.KVHeads < 0 || mm.Dim%mm.Heads != 0 || (mm.KVHeads > 0 && mm.Heads%mm.KVHeads != 0) {
			bad("init.demo.model", "needs layers, dim, heads, ff >= 1, context >= 2, dim divisible by heads and heads by kv_heads; got %+v", mm)
		}
		if d.PretrainSteps < 1 {
			bad("init.demo.pretrain_steps", "must be at least 1, got %d", d.PretrainSteps)
		}
		if !(d.PretrainLR > 0) {
			bad("init.demo.pretrain_lr", "must be positive, got %v", d.PretrainLR)
		}
		if d.FineTune.Method != "full" && d.FineTune.Method != "lora" {
			bad("init.demo.fine_tune.method", "unknown fine-tune method %q (want full or lora)", d.FineTune.Method)
		}
		if d.FineTune.Steps < 0 || d.FineTune.LR < 0 {
			bad("init.demo.fine_tune", "steps and lr must not be negative")
		}
	}
	if p := c.Publish; p != nil {
		switch p.Kind {
		case "path":
			if p.Path == "" {
				bad("publish.path", "must be set when publish.kind is \"path\"")
			}
		case "store":
		case "ollama":
			if p.Name == "" {
				bad("publish.name", "must name the Ollama model")
			}
		default:
			bad("publish.kind", "unknown kind %q (want path, store or ollama)", p.Kind)
		}
	}
	if c.Budgets.WallTime < 0 || c.Budgets.TrainTokens < 0 || c.Budgets.EvalItems < 0 {
		bad("budgets", "limits must not be negative")
	}
	to := c.Timeouts
	if to.Heartbeat < Duration(10*time.Second) {
		bad("timeouts.heartbeat", "must be at least 10s, got %s", time.Duration(to.Heartbeat))
	}
	for _, d := range []struct {
		field string
		v     Duration
	}{{"init", to.Init}, {"merge", to.Merge}, {"fine_tune", to.FineTune}, {"evaluate", to.Evaluate}, {"publish", to.Publish}} {
		if d.v < to.Heartbeat {
			bad("timeouts."+d.field, "must be at least timeouts.heartbeat (%s), got %s", time.Duration(to.Heartbeat), time.Duration(d.v))
		}
	}
	if to.MaxAttempts < 1 || to.MaxAttempts > 1000 {
		bad("timeouts.max_attempts", "must be between 1 and 1000, got %d", to.MaxAttempts)
	}
	if c.TaskQueues.CPU == "" || c.TaskQueues.GPU == "" {
		bad("task_queues", "cpu and gpu task queue names must not be empty")
	}
	if len(errs) == 0 {
		return nil
	}
	return &ConfigError{Fields: errs}
}

// ParseRunConfig decodes a JSON run config strictly (unknown fields are
// errors, so a typo never silently becomes a default), fills defaults and
// validates.
func ParseRunConfig(data []byte) (RunConfig, error) {
	var c RunConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return RunConfig{}, fmt.Errorf("run config: %w", err)
	}
	if dec.More() {
		return RunConfig{}, errors.New("run config: unexpected data after the JSON object")
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return RunConfig{}, err
	}
	return c, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func methodNames() []string { return sortedKeys(Methods) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
