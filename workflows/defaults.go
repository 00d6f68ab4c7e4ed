package workflows

import "time"

// WithDefaults returns a copy of c with every zero field filled, section by
// section; it never writes into the caller's slices or maps. Prepare calls it.
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
	c.Selection = c.Selection.withDefaults(c.Population)
	if c.Selection.FitnessSharing != nil {
		fs := c.Selection.FitnessSharing.withDefaults()
		c.Selection.FitnessSharing = &fs
	}
	if c.Children == 0 {
		c.Children = c.Population - c.Selection.Elitism
	}
	if c.Parallelism == 0 {
		c.Parallelism = 4
	}
	c.Crossover = c.Crossover.withDefaults(c.Init.hasBase())
	c.Mutation = c.Mutation.withDefaults()
	c.Fitness = c.Fitness.withDefaults()
	c.Init = c.Init.withDefaults()
	c.Publish = publishWithDefaults(c.Publish, c.Name)
	c.TaskQueues = c.TaskQueues.withDefaults()
	c.Timeouts = c.Timeouts.withDefaults()
	return c
}

// hasBase: generation 0 comes with a base model, so methods that need one can run.
func (in Init) hasBase() bool { return in.Base != "" || in.Demo != nil || in.ContinueLineage != "" }

func (s Selection) withDefaults(population int) Selection {
	if s.Scheme == "" {
		s.Scheme = SchemeTournament
	}
	if s.Elitism == 0 && population > 2 {
		s.Elitism = 2
	}
	if s.TournamentSize == 0 {
		s.TournamentSize = 3
	}
	if s.TruncationFraction == 0 {
		s.TruncationFraction = 0.5
	}
	return s
}

func (x Crossover) withDefaults(hasBase bool) Crossover {
	if x.Methods == nil { // nil = not given; an explicit [] is rejected by validation
		x.Methods = []CrossoverMethod{{Name: "ties"}, {Name: "dare_ties"}, {Name: "slerp"}, {Name: "linear"}}
		if !hasBase {
			// Without a base model only base-free methods can run.
			x.Methods = []CrossoverMethod{{Name: "slerp"}, {Name: "linear"}}
		}
	}
	if x.Parents == 0 {
		x.Parents = 2
	}
	methods := make([]CrossoverMethod, len(x.Methods))
	for i, m := range x.Methods {
		methods[i] = m.withDefaults()
	}
	x.Methods = methods
	return x
}

// withDefaults fills the weight, the output type and the method's default
// ranges for parameters the config does not name (in a new map).
func (m CrossoverMethod) withDefaults() CrossoverMethod {
	if m.Weight == 0 {
		m.Weight = 1
	}
	if m.OutType == "" {
		m.OutType = "f32"
	}
	params := map[string]ParamRange{}
	for k, v := range Methods[m.Name].Defaults {
		params[k] = v
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
	return m
}

func (m Mutation) withDefaults() Mutation {
	if m.Probability == nil {
		p := 0.5
		m.Probability = &p
	}
	if m.Methods == nil {
		m.Methods = []string{FineTuneFull}
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
		for _, fam := range SynthFamilies {
			m.Datasets = append(m.Datasets, MutationDataset{Family: fam})
		}
	}
	ds := make([]MutationDataset, len(m.Datasets))
	for i, d := range m.Datasets {
		if d.Weight == 0 {
			d.Weight = 1
		}
		ds[i] = d
	}
	m.Datasets = ds
	return m
}

func (f Fitness) withDefaults() Fitness {
	if f.Dev == nil && f.Test == nil && (f.Suite == "" || f.Suite == "synth" || f.Suite == SourceSynthetic) {
		f = f.fromOldForm()
	}
	f.Dev = tasksWithDefaults(f.Dev, SplitValidation)
	if f.Test == nil && allSynthetic(f.Dev) {
		// Synthetic dev tasks have a held-out split of their own.
		for _, t := range f.Dev {
			t.Split = SplitTest
			f.Test = append(f.Test, t)
		}
	}
	f.Test = tasksWithDefaults(f.Test, SplitTest)
	return f
}

// fromOldForm turns fitness.suite/tasks/held_out_items (synthetic families,
// scored on the validation split and held out on the test split) into dev
// and test lists: the same tasks, names, items and seeds as before, so
// cached scores stay valid.
func (f Fitness) fromOldForm() Fitness {
	tasks := f.Tasks
	if tasks == nil {
		for _, fam := range SynthFamilies {
			tasks = append(tasks, TaskSpec{Family: fam})
		}
	}
	held := f.HeldOutItems
	if held == 0 {
		held = 64
	}
	out := Fitness{Dev: []TaskSpec{}, Test: []TaskSpec{}, Seed: f.Seed}
	for _, t := range tasks {
		if t.Source == "" {
			t.Source = SourceSynthetic
		}
		if t.N == 0 {
			t.N = 32
		}
		dev, test := t, t
		dev.Split, test.Split, test.N = SplitValidation, SplitTest, held
		out.Dev, out.Test = append(out.Dev, dev), append(out.Test, test)
	}
	return out
}

func allSynthetic(ts []TaskSpec) bool {
	for _, t := range ts {
		if t.Source != SourceSynthetic {
			return false
		}
	}
	return len(ts) > 0
}

// tasksWithDefaults fills each task's source, name, weight and synthetic
// split and size (in a new slice); split is the list's role.
func tasksWithDefaults(ts []TaskSpec, split string) []TaskSpec {
	if ts == nil {
		return nil
	}
	out := make([]TaskSpec, len(ts))
	for i, t := range ts {
		if t.Source == "" && t.Family != "" {
			t.Source = SourceSynthetic
		}
		if t.Name == "" {
			t.Name = t.Source
			if t.Source == SourceSynthetic {
				t.Name = t.Family
			}
		}
		if t.Weight == 0 {
			t.Weight = 1
		}
		if t.Source == SourceSynthetic {
			if t.Split == "" {
				t.Split = split
			}
			if t.N == 0 {
				t.N = 32
			}
		}
		out[i] = t
	}
	return out
}

func (in Init) withDefaults() Init {
	if in.Demo != nil {
		d := in.Demo.withDefaults()
		in.Demo = &d
	}
	return in
}

func (d DemoSpec) withDefaults() DemoSpec {
	if d.Model == (TinyModel{}) {
		d.Model = demoModel
	}
	if d.PretrainSteps == 0 {
		d.PretrainSteps = 150
	}
	if d.PretrainLR == 0 {
		d.PretrainLR = 3e-3
	}
	if len(d.Families) == 0 {
		d.Families = append([]string(nil), SynthFamilies...)
	}
	if d.FineTune.Method == "" {
		d.FineTune.Method = FineTuneFull
	}
	if d.FineTune.LR == 0 {
		d.FineTune.LR = 2e-3
	}
	if d.FineTune.Steps == 0 {
		d.FineTune.Steps = 60
	}
	return d
}

// publishWithDefaults: the winner goes to the store under the run's name
// unless the config says otherwise (a copy; the caller's target is kept).
func publishWithDefaults(p *PublishTarget, run string) *PublishTarget {
	if p == nil {
		return &PublishTarget{Kind: "store", Name: run}
	}
	q := *p
	if q.Kind == "" {
		q.Kind = "store"
	}
	if q.Name == "" && q.Kind != "path" {
		q.Name = run
	}
	return &q
}

func (q TaskQueues) withDefaults() TaskQueues {
	if q.CPU == "" {
		q.CPU = TaskQueueCPU
	}
	if q.GPU == "" {
		q.GPU = TaskQueueGPU
	}
	return q
}

func (t Timeouts) withDefaults() Timeouts {
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
	return t
}
