package workflows

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
)

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

// problems collects field errors; each section's validate adds its own.
type problems struct{ errs []*FieldError }

func (p *problems) bad(field, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

var runNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Validate checks a config that went through WithDefaults, section by
// section, and returns a *ConfigError naming every field at fault, or nil.
// Prepare calls it.
func (c RunConfig) Validate() error {
	p := &problems{}
	c.validateRun(p)
	c.Selection.validate(p, c.Population)
	c.validateChildren(p)
	c.Crossover.validate(p, c.Population, c.Init.hasBase())
	c.Mutation.validate(p)
	c.Fitness.validate(p)
	c.Init.validate(p)
	c.Publish.validate(p)
	c.Budgets.validate(p)
	c.validateBudget(p)
	c.validateMode(p)
	c.Timeouts.validate(p)
	c.TaskQueues.validate(p)
	if len(p.errs) == 0 {
		return nil
	}
	return &ConfigError{Fields: p.errs}
}

func (c RunConfig) validateRun(p *problems) {
	if !runNameRE.MatchString(c.Name) {
		p.bad("name", "must be 1-100 characters of letters, digits, '.', '_' or '-', starting with a letter or digit; got %q", c.Name)
	}
	if c.Lineage != "" && !runNameRE.MatchString(c.Lineage) {
		p.bad("lineage", "must be 1-100 characters of letters, digits, '.', '_' or '-'; got %q", c.Lineage)
	}
	if c.Population < 2 {
		p.bad("population", "must be at least 2, got %d", c.Population)
	} else if c.Population > 1000 {
		p.bad("population", "must be at most 1000, got %d", c.Population)
	}
	if c.Generations < 1 || c.Generations > 100000 {
		p.bad("generations", "must be between 1 and 100000, got %d", c.Generations)
	}
	if c.Parallelism < 1 || c.Parallelism > 1000 {
		p.bad("parallelism", "must be between 1 and 1000, got %d", c.Parallelism)
	}
}

func (s Selection) validate(p *problems, population int) {
	switch s.Scheme {
	case SchemeTournament, SchemeRoulette, SchemeTruncation:
	default:
		p.bad("selection.scheme", "unknown scheme %q (want tournament, roulette or truncation)", s.Scheme)
	}
	if s.Elitism < 0 {
		p.bad("selection.elitism", "must not be negative, got %d", s.Elitism)
	} else if population >= 2 && s.Elitism >= population {
		p.bad("selection.elitism", "must be less than population (%d), got %d", population, s.Elitism)
	}
	if s.TournamentSize < 1 {
		p.bad("selection.tournament_size", "must be at least 1, got %d", s.TournamentSize)
	} else if population >= 2 && s.TournamentSize > population {
		p.bad("selection.tournament_size", "must be at most population (%d), got %d", population, s.TournamentSize)
	}
	if !(s.TruncationFraction > 0 && s.TruncationFraction <= 1) {
		p.bad("selection.truncation_fraction", "must be in (0, 1], got %v", s.TruncationFraction)
	}
}

func (c RunConfig) validateChildren(p *problems) {
	e := c.Selection.Elitism
	if c.Children < 1 || c.Children > 10000 {
		p.bad("children", "must be between 1 and 10000, got %d", c.Children)
	} else if c.Population >= 2 && e >= 0 && c.Children < c.Population-e {
		p.bad("children", "must be at least population - elitism (%d) so the population can be refilled, got %d",
			c.Population-e, c.Children)
	}
}

func (x Crossover) validate(p *problems, population int, hasBase bool) {
	if len(x.Methods) == 0 {
		p.bad("crossover.methods", "must name at least one merge method")
	}
	if x.Parents < 2 {
		p.bad("crossover.parents", "must be at least 2, got %d", x.Parents)
	} else if population >= 2 && x.Parents > population {
		p.bad("crossover.parents", "must be at most population (%d), got %d", population, x.Parents)
	}
	for i, m := range x.Methods {
		m.validate(p, fmt.Sprintf("crossover.methods[%d]", i), x.Parents, hasBase)
	}
}

func (m CrossoverMethod) validate(p *problems, field string, parents int, hasBase bool) {
	info, ok := Methods[m.Name]
	if !ok {
		p.bad(field+".name", "unknown merge method %q (known: %s)", m.Name, strings.Join(methodNames(), ", "))
		return
	}
	if info.NeedsBase && !hasBase {
		p.bad(field+".name", "method %q needs a base model: set init.base, init.demo or init.continue_lineage", m.Name)
	}
	if info.ExactParents > 0 && parents != info.ExactParents {
		p.bad(field+".name", "method %q takes exactly %d parents but crossover.parents is %d", m.Name, info.ExactParents, parents)
	}
	if !(m.Weight > 0) || math.IsInf(m.Weight, 0) {
		p.bad(field+".weight", "must be a positive number, got %v", m.Weight)
	}
	if !slices.Contains(OutTypes, m.OutType) {
		p.bad(field+".out_type", "must be %s, got %q", strings.Join(OutTypes, " or "), m.OutType)
	}
	for _, k := range sortedKeys(m.Params) {
		r := m.Params[k]
		pf := field + ".params." + k
		global, known := info.Params[k]
		if !known {
			p.bad(pf, "method %q has no parameter %q (known: %s)", m.Name, k, strings.Join(sortedKeys(info.Params), ", "))
			continue
		}
		if r.PerModel && global {
			p.bad(pf+".per_model", "parameter %q of method %q is global; it cannot vary per model", k, m.Name)
		}
		if (k == "density" || k == "t" || k == "gamma") && (r.Min < 0 || r.Max > 1) {
			p.bad(pf, "%s must stay within [0, 1], got min=%v max=%v", k, r.Min, r.Max)
		}
		if !finite(r.Min) || !finite(r.Max) || r.Min > r.Max {
			p.bad(pf, "needs finite min <= max, got min=%v max=%v", r.Min, r.Max)
		}
		if r.Anchors < 1 || r.Anchors > 64 {
			p.bad(pf+".anchors", "must be between 1 and 64, got %d", r.Anchors)
		}
	}
}

func (mu Mutation) validate(p *problems) {
	if mu.Probability == nil || !(*mu.Probability >= 0 && *mu.Probability <= 1) {
		p.bad("mutation.probability", "must be in [0, 1]")
	}
	if len(mu.Methods) == 0 {
		p.bad("mutation.methods", "must name at least one fine-tune method (full or lora)")
	}
	if len(mu.Ranks) == 0 {
		p.bad("mutation.ranks", "must list at least one LoRA rank")
	}
	for i, m := range mu.Methods {
		if !slices.Contains(FineTuneMethods, m) {
			p.bad(fmt.Sprintf("mutation.methods[%d]", i), "unknown fine-tune method %q (want full or lora)", m)
		}
	}
	if !(mu.LR.Min > 0) || !finite(mu.LR.Max) || mu.LR.Min > mu.LR.Max {
		p.bad("mutation.lr", "needs 0 < min <= max, got min=%v max=%v", mu.LR.Min, mu.LR.Max)
	}
	if mu.Steps.Min < 1 || mu.Steps.Min > mu.Steps.Max || mu.Steps.Max > MaxFineTuneSteps {
		p.bad("mutation.steps", "needs 1 <= min <= max <= %d, got min=%d max=%d", MaxFineTuneSteps, mu.Steps.Min, mu.Steps.Max)
	}
	for i, r := range mu.Ranks {
		if r < 1 || r > 4096 {
			p.bad(fmt.Sprintf("mutation.ranks[%d]", i), "must be between 1 and 4096, got %d", r)
		}
	}
	if !(mu.Alpha > 0) || !finite(mu.Alpha) {
		p.bad("mutation.alpha", "must be positive, got %v", mu.Alpha)
	}
	if len(mu.Datasets) == 0 {
		p.bad("mutation.datasets", "must name at least one dataset")
	}
	for i, d := range mu.Datasets {
		df := fmt.Sprintf("mutation.datasets[%d]", i)
		switch {
		case d.Path != "" && d.Family != "":
			p.bad(df, "give a path or a synthetic family, not both")
		case d.Family != "":
			if !slices.Contains(SynthFamilies, d.Family) {
				p.bad(df+".family", "unknown synthetic family %q (want %s)", d.Family, strings.Join(SynthFamilies, ", "))
			}
		default:
			if why := CheckDataRef(d.Path); why != "" {
				p.bad(df+".path", "%s", why)
			}
		}
		if !(d.Weight > 0) || !finite(d.Weight) {
			p.bad(df+".weight", "must be positive, got %v", d.Weight)
		}
	}
	if mu.Examples < 0 || mu.BatchSize < 0 || mu.CheckpointEvery < 0 {
		p.bad("mutation", "examples, batch_size and checkpoint_every must not be negative")
	}
}

func (f Fitness) validate(p *problems) {
	if f.Suite != "" && f.Suite != "synth" && f.Suite != SourceSynthetic {
		p.bad("fitness.suite", "unknown suite %q: list the tasks in fitness.dev and fitness.test", f.Suite)
	}
	if f.Tasks != nil || f.HeldOutItems != 0 {
		p.bad("fitness.tasks", "the old form (tasks, held_out_items) cannot be combined with fitness.dev/fitness.test")
	}
	if len(f.Dev) == 0 {
		p.bad("fitness.dev", "must name at least one task")
	}
	if len(f.Test) == 0 {
		p.bad("fitness.test", "must name at least one held-out task (data selection never sees: another split or file than fitness.dev's)")
	}
	validateTasks(p, "fitness.dev", f.Dev)
	validateTasks(p, "fitness.test", f.Test)
	for j, t := range f.Test {
		for i, d := range f.Dev {
			if why := sameItems(d, t); why != "" {
				p.bad(fmt.Sprintf("fitness.test[%d]", j), "uses the same items as fitness.dev[%d] (%s): held-out scores must come from items selection never saw", i, why)
			}
		}
	}
}

// sameItems says why two tasks may score the same items, or "".
func sameItems(a, b TaskSpec) string {
	switch {
	case a.Source == SourceSynthetic && b.Source == SourceSynthetic:
		if a.Family == b.Family && a.Split == b.Split {
			return fmt.Sprintf("synthetic family %s, split %s", a.Family, a.Split)
		}
	case a.Source == SourceSynthetic || b.Source == SourceSynthetic:
	case a.Path != "" && a.Path == b.Path:
		// Two seeded subsamples of one file overlap (and n = 0 is all of it).
		return fmt.Sprintf("the same data %s", a.Path)
	}
	return ""
}

// ValidateTasks checks a task list (a `starter eval` suite file, or
// fitness.dev/test) and returns the problems, with fields under name.
func ValidateTasks(name string, ts []TaskSpec) []*FieldError {
	p := &problems{}
	validateTasks(p, name, tasksWithDefaults(ts, SplitValidation))
	if len(ts) == 0 {
		p.bad(name, "must name at least one task")
	}
	return p.errs
}

// TasksWithDefaults fills a task list's defaults as fitness.dev's.
func TasksWithDefaults(ts []TaskSpec) []TaskSpec { return tasksWithDefaults(ts, SplitValidation) }

func validateTasks(p *problems, list string, ts []TaskSpec) {
	names := map[string]int{}
	for i, t := range ts {
		tf := fmt.Sprintf("%s[%d]", list, i)
		if !slices.Contains(TaskSources, t.Source) {
			p.bad(tf+".source", "unknown source %q (want %s)", t.Source, strings.Join(TaskSources, ", "))
		}
		if prev, dup := names[t.Name]; dup && t.Name != "" {
			p.bad(tf+".name", "%q is also the name of %s[%d]: names must be unique in a list", t.Name, list, prev)
		} else {
			names[t.Name] = i
		}
		if t.Name == "" {
			p.bad(tf+".name", "must not be empty")
		}
		switch t.Source {
		case SourceSynthetic:
			if !slices.Contains(SynthFamilies, t.Family) {
				p.bad(tf+".family", "unknown synthetic family %q (want %s)", t.Family, strings.Join(SynthFamilies, ", "))
			}
			if t.Path != "" || t.FewshotPath != "" {
				p.bad(tf+".path", "a synthetic task reads no file")
			}
			if t.N < 1 {
				p.bad(tf+".n", "a synthetic task needs n >= 1, got %d", t.N)
			}
		default:
			if t.Family != "" {
				p.bad(tf+".family", "only synthetic tasks have a family (source is %q)", t.Source)
			}
			if why := CheckDataRef(t.Path); why != "" {
				p.bad(tf+".path", "%s", why)
			}
			if t.FewshotPath != "" {
				if why := CheckDataRef(t.FewshotPath); why != "" {
					p.bad(tf+".fewshot_path", "%s", why)
				}
			}
			if t.Source == SourceJSONL && t.Kind == "" {
				p.bad(tf+".kind", "a jsonl task needs its kind (multiple_choice, mc2, partial, generate or perplexity)")
			}
		}
		if t.N < 0 || t.N > 1_000_000 {
			p.bad(tf+".n", "must be between 0 (all items) and 1000000, got %d", t.N)
		}
		if t.Fewshot < 0 || t.Fewshot > 1000 {
			p.bad(tf+".fewshot", "must be between 0 and 1000, got %d", t.Fewshot)
		}
		if !(t.Weight > 0) || !finite(t.Weight) {
			p.bad(tf+".weight", "must be positive, got %v", t.Weight)
		}
		if t.MaxTokens < 0 {
			p.bad(tf+".max_tokens", "must not be negative, got %d", t.MaxTokens)
		}
	}
}

func (in Init) validate(p *problems) {
	if in.Demo == nil && len(in.Models) == 0 && in.ContinueLineage == "" {
		p.bad("init", "needs models, demo or continue_lineage to create generation 0")
	}
	if in.Demo != nil && len(in.Models) > 0 {
		p.bad("init.models", "cannot be combined with init.demo")
	}
	for i, m := range in.Models {
		if strings.TrimSpace(m) == "" {
			p.bad(fmt.Sprintf("init.models[%d]", i), "must not be empty")
		}
	}
	if len(in.Models) == 1 {
		p.bad("init.models", "needs at least 2 models to cross over, got 1")
	}
	if in.ContinueLineage != "" && !runNameRE.MatchString(in.ContinueLineage) {
		p.bad("init.continue_lineage", "must be a lineage name, got %q", in.ContinueLineage)
	}
	if in.Demo != nil {
		in.Demo.validate(p)
	}
}

func (d DemoSpec) validate(p *problems) {
	mm := d.Model
	if mm.Layers < 1 || mm.Dim < 1 || mm.Heads < 1 || mm.FFN < 1 || mm.Context < 2 ||
		mm.KVHeads < 0 || mm.Dim%mm.Heads != 0 || (mm.KVHeads > 0 && mm.Heads%mm.KVHeads != 0) {
		p.bad("init.demo.model", "needs layers, dim, heads, ffn >= 1, context >= 2, dim divisible by heads and heads by kv_heads; got %+v", mm)
	}
	if d.PretrainSteps < 1 {
		p.bad("init.demo.pretrain_steps", "must be at least 1, got %d", d.PretrainSteps)
	}
	if !(d.PretrainLR > 0) {
		p.bad("init.demo.pretrain_lr", "must be positive, got %v", d.PretrainLR)
	}
	if len(d.Families) == 0 {
		p.bad("init.demo.families", "must name at least one synthetic family")
	}
	for _, fe := range d.FineTune.WithDefaults().Check() {
		p.bad("init.demo.fine_tune."+fe.Field, "%s", fe.Problem)
	}
}

func (t *PublishTarget) validate(p *problems) {
	if t == nil {
		return
	}
	switch t.Kind {
	case "path":
		if t.Path == "" {
			p.bad("publish.path", "must be set when publish.kind is \"path\"")
		}
	case "store":
	case "ollama":
		if t.Name == "" {
			p.bad("publish.name", "must name the Ollama model")
		}
	default:
		p.bad("publish.kind", "unknown kind %q (want path, store or ollama)", t.Kind)
	}
}

func (b Budgets) validate(p *problems) {
	if b.WallTime < 0 || b.TrainTokens < 0 || b.EvalItems < 0 {
		p.bad("budgets", "limits must not be negative")
	}
}

func (to Timeouts) validate(p *problems) {
	if to.Heartbeat < Duration(10*time.Second) {
		p.bad("timeouts.heartbeat", "must be at least 10s, got %s", time.Duration(to.Heartbeat))
	}
	for _, d := range []struct {
		field string
		v     Duration
	}{{"init", to.Init}, {"merge", to.Merge}, {"fine_tune", to.FineTune}, {"evaluate", to.Evaluate}, {"publish", to.Publish}} {
		if d.v < to.Heartbeat {
			p.bad("timeouts."+d.field, "must be at least timeouts.heartbeat (%s), got %s", time.Duration(to.Heartbeat), time.Duration(d.v))
		}
	}
	if to.MaxAttempts < 1 || to.MaxAttempts > 1000 {
		p.bad("timeouts.max_attempts", "must be between 1 and 1000, got %d", to.MaxAttempts)
	}
}

func (q TaskQueues) validate(p *problems) {
	if q.CPU == "" || q.GPU == "" {
		p.bad("task_queues", "cpu and gpu task queue names must not be empty")
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
