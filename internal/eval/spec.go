package eval

import (
	"fmt"
	"math"
	"regexp"

	"github.com/evomerge/evomerge/internal/eval/bench"
	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/eval/task"
)

// Sources other than the native formats of package bench.
const (
	SourceSynthetic = "synthetic"
	SourceJSONL     = "jsonl"
)

// Few-shot samplers.
const (
	SamplerRandom = "random"
	SamplerFirstN = "first_n"
)

// Metric names. The primary metric of a task is its score in the fitness.
const (
	MetricAcc           = "acc"
	MetricAccNorm       = "acc_norm"
	MetricMC2           = "mc2"
	MetricExactMatch    = "exact_match"          // strict extraction
	MetricExactFlexible = "exact_match_flexible" // last number in the output
	MetricTokenProb     = "token_prob"           // exp(-loss per token)
	MetricLoss          = "loss"                 // mean negative log-likelihood per token, nats
	MetricBitsPerByte   = "bits_per_byte"
	MetricPerplexity    = "perplexity" // exp(loss), per token
)

// TaskSpec describes one task of a suite. It is plain data (JSON) so a run
// config can carry it; Suite.Validate checks it without touching files.
type TaskSpec struct {
	// Name identifies the task in reports and cache keys; unique in a suite.
	Name string `json:"name"`
	// Source is "synthetic", "jsonl" (generic schema) or a native format:
	// arc, hellaswag, mmlu, truthfulqa_mc2, winogrande, gsm8k.
	Source string `json:"source"`
	// Kind is required for "jsonl". For "synthetic" it may be "perplexity"
	// to measure held-out loss on the family's text; otherwise it follows
	// from the source.
	Kind task.Kind `json:"kind,omitempty"`
	// Family and Split choose synthetic items (split default: validation).
	Family string `json:"family,omitempty"`
	Split  string `json:"split,omitempty"`
	// Path is the data file of native and jsonl sources.
	Path string `json:"path,omitempty"`
	// FewshotPath is the file few-shot examples are drawn from (for
	// example the train or dev split). Empty: the evaluated file itself,
	// never the item being scored.
	FewshotPath string `json:"fewshot_path,omitempty"`
	// FewshotSplit is the synthetic split few-shot examples come from
	// (default train).
	FewshotSplit string `json:"fewshot_split,omitempty"`
	// N is the number of items scored: a seeded subsample of a file (0 =
	// all of it), or the number of synthetic items (required).
	N int `json:"n,omitempty"`
	// Seed drives the subsample, the few-shot draws and synthetic items.
	Seed uint64 `json:"seed"`
	// Fewshot is the number of solved examples before each item.
	Fewshot int `json:"fewshot,omitempty"`
	// FewshotSampler is "random" (a seeded draw per item, the default) or
	// "first_n" (the first examples of the pool, lm-eval's choice for MMLU).
	FewshotSampler string `json:"fewshot_sampler,omitempty"`
	// Weight in the fitness mean; 0 means 1.
	Weight float64 `json:"weight,omitempty"`
	// Metric overrides the task's primary metric.
	Metric string `json:"metric,omitempty"`
	// Generation settings (kind generate); defaults depend on the source.
	// Setting any of the four extraction fields (answer_regex,
	// flexible_regex, ignore_regexes, ignore_case) replaces the source's
	// preset (GSM8K's for gsm8k and synthetic addition) as a whole.
	MaxTokens     int      `json:"max_tokens,omitempty"`
	Until         []string `json:"until,omitempty"`
	AnswerRegex   string   `json:"answer_regex,omitempty"`
	FlexibleRegex string   `json:"flexible_regex,omitempty"`
	IgnoreRegexes []string `json:"ignore_regexes,omitempty"`
	IgnoreCase    bool     `json:"ignore_case,omitempty"`
}

// Suite is the list of tasks a fitness is computed over.
type Suite struct {
	Name  string     `json:"name,omitempty"`
	Tasks []TaskSpec `json:"tasks"`
}

// WithSeed returns a copy of the suite with every task's seed set to seed,
// so that one run seed drives all of evaluation.
func (s Suite) WithSeed(seed uint64) Suite {
	out := Suite{Name: s.Name, Tasks: append([]TaskSpec(nil), s.Tasks...)}
	for i := range out.Tasks {
		out.Tasks[i].Seed = seed
	}
	return out
}

// Validate checks the suite without reading any file: names, sources,
// kinds, sizes, weights, metrics and regexes.
func (s Suite) Validate() error {
	if len(s.Tasks) == 0 {
		return fmt.Errorf("suite %q: no tasks", s.Name)
	}
	seen := map[string]bool{}
	for i := range s.Tasks {
		t, err := s.Tasks[i].withDefaults()
		if err != nil {
			return fmt.Errorf("suite %q: tasks[%d]: %w", s.Name, i, err)
		}
		if seen[t.Name] {
			return fmt.Errorf("suite %q: tasks[%d]: duplicate task name %q", s.Name, i, t.Name)
		}
		seen[t.Name] = true
		if _, err := t.extractor(); err != nil {
			return fmt.Errorf("suite %q: tasks[%d]: %w", s.Name, i, err)
		}
	}
	return nil
}

var taskName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$`)

// withDefaults checks a spec and fills the defaults of its source.
func (t TaskSpec) withDefaults() (TaskSpec, error) {
	if !taskName.MatchString(t.Name) {
		return t, fmt.Errorf("field name: %q is not a task name (letters, digits, _ . : / -)", t.Name)
	}
	fail := func(format string, a ...any) (TaskSpec, error) {
		return t, fmt.Errorf("task %s: %s", t.Name, fmt.Sprintf(format, a...))
	}
	if t.N < 0 {
		return fail("field n: %d is negative", t.N)
	}
	if t.Fewshot < 0 {
		return fail("field fewshot: %d is negative", t.Fewshot)
	}
	if t.Weight < 0 || math.IsNaN(t.Weight) || math.IsInf(t.Weight, 0) {
		return fail("field weight: %v is not a finite weight >= 0", t.Weight)
	}
	if t.Weight == 0 {
		t.Weight = 1
	}
	if t.MaxTokens < 0 {
		return fail("field max_tokens: %d is negative", t.MaxTokens)
	}
	switch t.Source {
	case SourceSynthetic:
		kind, err := synth.Kind(t.Family)
		if err != nil {
			return fail("field family: %v", err)
		}
		if t.Split == "" {
			t.Split = string(synth.Validation)
		}
		split, err := synth.ParseSplit(t.Split)
		if err != nil {
			return fail("field split: %v", err)
		}
		t.Split = string(split)
		if t.FewshotSplit == "" {
			t.FewshotSplit = string(synth.Train)
		}
		fsplit, err := synth.ParseSplit(t.FewshotSplit)
		if err != nil {
			return fail("field fewshot_split: %v", err)
		}
		t.FewshotSplit = string(fsplit)
		if t.N == 0 {
			return fail("field n: a synthetic task needs n > 0")
		}
		switch t.Kind {
		case "":
			t.Kind = kind
		case kind, task.Perplexity:
		default:
			return fail("field kind: family %s is %s (or perplexity), not %s", t.Family, kind, t.Kind)
		}
		if t.Kind == task.Generate {
			// The addition family answers GSM8K-style, one line.
			t.fillGenerate(32, []string{"\n"}, GSM8KStrictRegex, GSM8KFlexibleRegex, GSM8KIgnoreRegexes, true)
			if t.Metric == "" {
				t.Metric = MetricExactFlexible
			}
		}
	case SourceJSONL:
		if t.Path == "" {
			return fail("field path: missing")
		}
		if _, err := task.ParseKind(string(t.Kind)); err != nil {
			return fail("field kind: %v", err)
		}
		if t.Kind == task.Generate {
			t.fillGenerate(256, []string{"\n\n"}, "", "", nil, false)
		}
	default:
		f, err := bench.Lookup(t.Source)
		if err != nil {
			return fail("field source: %v (or %q, %q)", err, SourceSynthetic, SourceJSONL)
		}
		if t.Path == "" {
			return fail("field path: missing")
		}
		if t.Kind != "" && t.Kind != f.Kind {
			return fail("field kind: source %s is %s, not %s", t.Source, f.Kind, t.Kind)
		}
		t.Kind = f.Kind
		switch t.Source {
		case "gsm8k":
			t.fillGenerate(256, []string{"\n\n", "Question:"}, GSM8KStrictRegex, GSM8KFlexibleRegex, GSM8KIgnoreRegexes, true)
		case "mmlu":
			if t.FewshotSampler == "" {
				t.FewshotSampler = SamplerFirstN // the dev split's first examples
			}
		case "arc", "hellaswag":
			if t.Metric == "" {
				t.Metric = MetricAccNorm // as the Open LLM Leaderboard reports them
			}
		}
	}
	switch t.FewshotSampler {
	case "":
		t.FewshotSampler = SamplerRandom
	case SamplerRandom, SamplerFirstN:
	default:
		return fail("field fewshot_sampler: %q is not %q or %q", t.FewshotSampler, SamplerRandom, SamplerFirstN)
	}
	if t.Kind == task.Perplexity && t.Fewshot > 0 {
		return fail("field fewshot: a perplexity task takes no few-shot examples")
	}
	if t.Metric == "" {
		t.Metric = defaultMetric[t.Kind]
	}
	if !validMetric(t.Kind, t.Metric, t.FlexibleRegex != "") {
		return fail("field metric: %q is not a metric of a %s task", t.Metric, t.Kind)
	}
	return t, nil
}

func (t *TaskSpec) fillGenerate(maxTokens int, until []string, strict, flexible string, ignore []string, fold bool) {
	if t.MaxTokens == 0 {
		t.MaxTokens = maxTokens
	}
	if t.Until == nil {
		t.Until = until
	}
	if t.AnswerRegex == "" && t.FlexibleRegex == "" && t.IgnoreRegexes == nil && !t.IgnoreCase {
		t.AnswerRegex, t.FlexibleRegex, t.IgnoreRegexes, t.IgnoreCase = strict, flexible, ignore, fold
	}
}

func (t TaskSpec) extractor() (*extractor, error) {
	return compileExtractor(t.Name, t.AnswerRegex, t.FlexibleRegex, t.IgnoreRegexes, t.IgnoreCase)
}

var defaultMetric = map[task.Kind]string{
	task.MultipleChoice: MetricAcc,
	task.MC2:            MetricMC2,
	task.Partial:        MetricAcc,
	task.Generate:       MetricExactMatch,
	task.Perplexity:     MetricTokenProb,
}

func validMetric(k task.Kind, m string, flexible bool) bool {
	switch k {
	case task.MultipleChoice:
		return m == MetricAcc || m == MetricAccNorm
	case task.MC2:
		return m == MetricMC2
	case task.Partial:
		return m == MetricAcc
	case task.Generate:
		return m == MetricExactMatch || (flexible && m == MetricExactFlexible)
	case task.Perplexity:
		// Only a higher-is-better metric can be a fitness term.
		return m == MetricTokenProb
	}
	return false
}

// DemoSuite scores every synthetic family on n items of split: use the
// validation split for fitness during evolution and the test split for the
// final report.
func DemoSuite(split synth.Split, n int, seed uint64) Suite {
	s := Suite{Name: "synthetic-" + string(split)}
	for _, fam := range synth.Families() {
		s.Tasks = append(s.Tasks, TaskSpec{
			Name:   fam,
			Source: SourceSynthetic,
			Family: fam,
			Split:  string(split),
			N:      n,
			Seed:   seed,
		})
	}
	return s
}

// DemoFitnessSuite is the suite evolution selects on: 32 validation items
// per family, about a second or two for a tiny model on a CPU.
func DemoFitnessSuite(seed uint64) Suite { return DemoSuite(synth.Validation, 32, seed) }

// DemoReportSuite is the held-out suite for the final report.
func DemoReportSuite(seed uint64) Suite { return DemoSuite(synth.Test, 100, seed) }
