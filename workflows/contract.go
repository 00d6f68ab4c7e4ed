// Package workflows holds the Evolution workflow, its run config, and the
// contract between the workflow and the activities that do the heavy work.
//
// This file is the contract shared with activities/ and workers/: activity
// names, task queues, error types, and every activity's input and output.
// Everything here is a plain JSON-serialisable value (no cgo, no I/O), so the
// workflow stays pure and the activities can live on any machine.
//
// Memoisation: an activity's output key is derived from its input's content
// (inputs, genome/params, seed, suite). The Run and Label fields are for logs
// and summaries only and must not enter any key, so identical work in two
// runs (e.g. the demo population) is done once.
//
// Compatibility rule: fields may be added (with zero values that mean "as
// before"); existing fields are never renamed or retyped, because recorded
// histories and running workflows carry these values.
package workflows

// Workflow and activity type names as registered on the workers. They are
// stable strings so `temporal workflow start --type Evolution` and recorded
// histories keep working when Go identifiers change.
const (
	WorkflowEvolution = "Evolution"

	ActivityInitPopulation = "InitPopulation"
	ActivityMerge          = "Merge"
	ActivityFineTune       = "FineTune"
	ActivityEvaluate       = "Evaluate"
	ActivityPublish        = "Publish"
	ActivityDiversity      = "Diversity"
)

// Default task queues: merges and publishing are I/O bound (cpu); population
// creation, fine-tunes and evaluations need the compute backend (gpu).
const (
	TaskQueueCPU = "cpu"
	TaskQueueGPU = "gpu"
)

// Application error types. Activities return these as non-retryable
// temporal application errors (temporal.NewNonRetryableApplicationError(msg,
// ErrType..., cause)); the workflow drops the child and records the reason.
const (
	// ErrTypeBadInput: the input can never succeed (unknown method, missing
	// model, malformed genome). Retrying is pointless.
	ErrTypeBadInput = "BadInput"
	// ErrTypeDiverged: a fine-tune's loss became NaN/Inf or exploded.
	ErrTypeDiverged = "Diverged"
	// ErrTypeEvalFailed: the model could not be evaluated (e.g. it produces
	// non-finite scores).
	ErrTypeEvalFailed = "EvalFailed"
	// ErrTypeCorrupt: an object in the store does not match its hash.
	ErrTypeCorrupt = "Corrupt"
)

// NonRetryableErrorTypes lists the error types the workflow's retry policies
// never retry.
var NonRetryableErrorTypes = []string{ErrTypeBadInput, ErrTypeDiverged, ErrTypeEvalFailed}

// ModelRef names a model by content: "sha256:<64 lowercase hex>" of the GGUF
// file's bytes. The store keeps it as models/<hex>.gguf.
type ModelRef = string

// ---------------------------------------------------------------- InitPopulation

// InitPopulationInput creates generation 0. Exactly one source is used, in
// this order: ContinueLineage (the last population a previous run of that
// lineage published), Models (import files), Demo (tiny base from nothing plus
// fine-tuned specialists).
type InitPopulationInput struct {
	Run  string `json:"run"`
	Seed uint64 `json:"seed"`
	// Size is how many members generation 0 should have. Import returns all
	// given models (Size only checked); demo creates exactly Size members.
	Size int `json:"size"`
	// ContinueLineage: name of a lineage whose last published population
	// seeds this run (store key lineages/<name>/population.json). If that
	// lineage has no published population yet, the next source is used.
	ContinueLineage string `json:"continue_lineage,omitempty"`
	// Models: paths or URLs (file path, file://, s3://, or an existing
	// "sha256:" ref already in the store) of GGUF models to import.
	Models []string `json:"models,omitempty"`
	// Base: optional base model (same forms as Models) used by merge methods
	// that need one (task arithmetic, ties, dare). Demo creates its own.
	Base string    `json:"base,omitempty"`
	Demo *DemoSpec `json:"demo,omitempty"`
}

// DemoSpec describes the demo population: a tiny byte-level llama pretrained
// from nothing, then one fine-tuned specialist per member, cycling through
// Families (as the first generation of the paper was a set of fine-tunes).
type DemoSpec struct {
	Model         TinyModel `json:"model"`
	PretrainSteps int       `json:"pretrain_steps"`
	PretrainLR    float64   `json:"pretrain_lr"`
	// Specialist fine-tunes: one per member, dataset = Families[i % len].
	Families []string       `json:"families"`
	FineTune FineTuneParams `json:"fine_tune"`
}

// TinyModel is the shape of the demo's tiny llama: the fields of llm.Config
// a user chooses, under the same names (activities.tinyModelConfig converts;
// histories recorded before the rename say "ff" for ffn, still read).
type TinyModel struct {
	Layers  int `json:"layers"`
	Dim     int `json:"dim"`
	Heads   int `json:"heads"`
	KVHeads int `json:"kv_heads"`
	FFN     int `json:"ffn"`
	Context int `json:"context"`
}

// InitMember is one model of generation 0.
type InitMember struct {
	Ref ModelRef `json:"ref"`
	// Origin says where it came from, for lineage ("import models/a.gguf",
	// "fine-tune full lr=1e-3 on addition", "lineage nightly #12").
	Origin string `json:"origin"`
	// LineageFitness is the fitness a continued lineage recorded for it: the
	// workflow keeps the best of a larger recorded population by it (it is
	// not a score of this run, whose suite may differ).
	LineageFitness float64 `json:"lineage_fitness,omitempty"`
}

// Sources of generation 0 (InitPopulationOutput.Source).
const (
	SourceLineage = "lineage"
	SourceImport  = "import"
	SourceDemo    = "demo"
)

type InitPopulationOutput struct {
	// Source is where the members came from; with SourceLineage the
	// workflow keeps the best Size of them. Empty in histories recorded
	// before it existed (the activity truncated then).
	Source  string       `json:"source,omitempty"`
	Members []InitMember `json:"members"`
	// Base is the base model for merge methods that need one ("" if none).
	Base ModelRef `json:"base,omitempty"`
	// Cached: the population already existed under its content-derived key.
	Cached bool `json:"cached,omitempty"`
}

// ---------------------------------------------------------------- Merge

// Param mirrors merge.Param: a value given by anchors interpolated across
// layers (one anchor = constant), optionally per tensor class.
type Param struct {
	Anchors []float64            `json:"anchors,omitempty"`
	ByClass map[string][]float64 `json:"by_class,omitempty"`
}

// Genome mirrors merge.Spec field by field (activities.mergeSpec converts;
// a test checks every field of one has its counterpart in the other): the
// merge recipe the workflow sampled.
type Genome struct {
	Method string `json:"method"`
	// Base indexes MergeInput.Inputs; -1 means no base model.
	Base     int                `json:"base"`
	Global   map[string]Param   `json:"global,omitempty"`
	PerModel []map[string]Param `json:"per_model,omitempty"`
	// Slices is passed through to merge.Spec unchanged (layer slices for
	// passthrough/frankenmerges); the workflow does not sample it yet.
	Slices  []Slice `json:"slices,omitempty"`
	Seed    uint64  `json:"seed"`
	OutType string  `json:"out_type,omitempty"`
}

// Slice mirrors merge.Slice: a run of output layers, copied from one layer
// range [From, To) of input Model, or with Sources, merged layer by layer
// from ranges of several inputs.
type Slice struct {
	Model   int           `json:"model"`
	From    int           `json:"from"`
	To      int           `json:"to"`
	Sources []SliceSource `json:"sources,omitempty"`
}

// SliceSource mirrors merge.SliceSource: layer range [From, To) of input Model.
type SliceSource struct {
	Model int `json:"model"`
	From  int `json:"from"`
	To    int `json:"to"`
}

type MergeInput struct {
	Run string `json:"run"`
	// Inputs are the models to merge; the genome's Base indexes into it.
	Inputs []ModelRef `json:"inputs"`
	Genome Genome     `json:"genome"`
	// Label is a human summary ("ties(d=0.5) #3 × #7") for logs.
	Label string `json:"label,omitempty"`
}

type MergeOutput struct {
	Ref    ModelRef `json:"ref"`
	Bytes  int64    `json:"bytes"`
	Cached bool     `json:"cached,omitempty"`
}

// ---------------------------------------------------------------- FineTune

// Fine-tune methods (train.Config.Method; checked by a test).
const (
	FineTuneFull = "full"
	FineTuneLoRA = "lora"
)

// FineTuneMethods are the fine-tune methods, in the order errors list them.
var FineTuneMethods = []string{FineTuneFull, FineTuneLoRA}

// MaxFineTuneSteps bounds the steps of one fine-tune.
const MaxFineTuneSteps = 1_000_000

// FineTuneParams are the mutation hyperparameters (sampled by the workflow).
// BatchSize was "batch" in histories recorded before the rename (still read).
type FineTuneParams struct {
	Method string  `json:"method"` // FineTuneFull | FineTuneLoRA
	LR     float64 `json:"lr"`
	Steps  int     `json:"steps"`
	Rank   int     `json:"rank,omitempty"`  // lora only
	Alpha  float64 `json:"alpha,omitempty"` // lora only
	// Dataset is a synthetic task family (training split), e.g. "addition";
	// empty when Mixture is given.
	Dataset string `json:"dataset"`
	// Mixture is the datasets this child trains on with the mixture
	// weights the workflow drew for it (mutation.datasets with files);
	// Examples examples are drawn from it with Seed.
	Mixture []MixturePart `json:"mixture,omitempty"`
	// ChatTemplate replaces the base model's tokenizer.chat_template for
	// chat datasets (mutation.chat_template).
	ChatTemplate string `json:"chat_template,omitempty"`
	// Examples: how many training examples to generate (0 = activity default).
	Examples  int    `json:"examples,omitempty"`
	BatchSize int    `json:"batch_size,omitempty"`
	Seed      uint64 `json:"seed"`
	// CheckpointEvery: steps between checkpoints written to the store
	// (0 = activity default). The heartbeat timeout must exceed one interval.
	CheckpointEvery int `json:"checkpoint_every,omitempty"`
}

// MixturePart is one dataset of a fine-tune's mixture: a synthetic Family
// or a data file Path (a DataRef, store:<sha256> once the starter has
// uploaded it), with the weight drawn for this child.
type MixturePart struct {
	Family string  `json:"family,omitempty"`
	Path   string  `json:"path,omitempty"`
	Weight float64 `json:"weight"`
}

type FineTuneInput struct {
	Run    string         `json:"run"`
	Base   ModelRef       `json:"base"`
	Params FineTuneParams `json:"params"`
	Label  string         `json:"label,omitempty"`
}

// FineTuneHeartbeat is the heartbeat detail a retried fine-tune resumes from.
type FineTuneHeartbeat struct {
	Step       int     `json:"step"`
	Loss       float64 `json:"loss"`
	Checkpoint string  `json:"checkpoint,omitempty"` // store key of the last checkpoint
}

type FineTuneOutput struct {
	Ref       ModelRef `json:"ref"`
	FirstLoss float64  `json:"first_loss"`
	FinalLoss float64  `json:"final_loss"`
	Steps     int      `json:"steps"`
	// Tokens trained on (for the training-token budget).
	Tokens int64 `json:"tokens"`
	// ResumedFrom is the step a retried attempt resumed at (0 = fresh).
	ResumedFrom int  `json:"resumed_from,omitempty"`
	Cached      bool `json:"cached,omitempty"`
}

// ---------------------------------------------------------------- Evaluate

// TaskSpec is one eval task: a field-for-field mirror of internal/eval's
// TaskSpec under the same JSON names (activities.evalTask converts; a test
// checks every field has its counterpart), so fitness.dev, fitness.test and
// a `starter eval` suite file read the same as the eval package documents.
// Path and FewshotPath are data references (DataRef): a local path, file://,
// s3:// or store:<sha256>; the starter uploads local files and leaves only
// store: references in the workflow input. N was "items" in histories
// recorded before the rename (still read).
type TaskSpec struct {
	// Name identifies the task in scores and cache keys; default: the
	// family of a synthetic task, else the source. Unique in a list.
	Name string `json:"name,omitempty"`
	// Source: arc, hellaswag, mmlu, truthfulqa_mc2, winogrande, gsm8k,
	// jsonl or synthetic (the default when a family is given).
	Source string `json:"source,omitempty"`
	// Kind is required for jsonl (multiple_choice, mc2, partial, generate,
	// perplexity); other sources know theirs.
	Kind string `json:"kind,omitempty"`
	// Family and Split choose synthetic items (split default: validation).
	Family       string `json:"family,omitempty"`
	Split        string `json:"split,omitempty"`
	Path         string `json:"path,omitempty"`
	FewshotPath  string `json:"fewshot_path,omitempty"`
	FewshotSplit string `json:"fewshot_split,omitempty"`
	// N: items scored (a seeded subsample of a file, 0 = all of it; the
	// number of synthetic items, default 32).
	N int `json:"n,omitempty"`
	// Seed of the subsample and few-shot draws; 0 = the run's seed.
	Seed           uint64   `json:"seed,omitempty"`
	Fewshot        int      `json:"fewshot,omitempty"`
	FewshotSampler string   `json:"fewshot_sampler,omitempty"`
	Weight         float64  `json:"weight,omitempty"` // 0 = 1
	Metric         string   `json:"metric,omitempty"`
	MaxTokens      int      `json:"max_tokens,omitempty"`
	Until          []string `json:"until,omitempty"`
	AnswerRegex    string   `json:"answer_regex,omitempty"`
	FlexibleRegex  string   `json:"flexible_regex,omitempty"`
	IgnoreRegexes  []string `json:"ignore_regexes,omitempty"`
	IgnoreCase     bool     `json:"ignore_case,omitempty"`
}

// Task sources (eval's; checked by a test against internal/eval).
const (
	SourceSynthetic = "synthetic"
	SourceJSONL     = "jsonl"
)

// TaskSources are every source a task may name, in the order errors list them.
var TaskSources = []string{"arc", "gsm8k", "hellaswag", "mmlu", "truthfulqa_mc2", "winogrande", SourceJSONL, SourceSynthetic}

// Split names of the evaluation suite, the engine's (synth.Split; checked by
// a test): SplitValidation drives selection; SplitTest is held out and used
// only for the final report. Histories recorded before say "dev" for
// validation, which the activities still read.
const (
	SplitValidation = "validation"
	SplitTest       = "test"
)

// SuiteSpec is what to evaluate on. Name says which list it is
// ("fitness.dev", "fitness.test"; "synth" in older histories). Split is the
// role (validation or test): the split of a task that names no source
// (a synthetic family, as older histories give them). Seed is the run's,
// for tasks without their own.
type SuiteSpec struct {
	Name  string     `json:"name"`
	Split string     `json:"split"`
	Tasks []TaskSpec `json:"tasks"`
	Seed  uint64     `json:"seed"`
}

type EvaluateInput struct {
	Run   string    `json:"run,omitempty"`
	Model ModelRef  `json:"model"`
	Suite SuiteSpec `json:"suite"`
	Label string    `json:"label,omitempty"`
}

// TaskScore is one task's score. Family holds the task's name (the family
// of a synthetic task); N was "items" before the rename (still read).
type TaskScore struct {
	Family string  `json:"family"`
	Score  float64 `json:"score"`
	N      int     `json:"n"`
	// Metric and StdErr as eval reports them (empty in older histories).
	Metric string  `json:"metric,omitempty"`
	StdErr float64 `json:"stderr,omitempty"`
}

type EvaluateOutput struct {
	Model   ModelRef    `json:"model"`
	Fitness float64     `json:"fitness"`
	Tasks   []TaskScore `json:"tasks"`
	// Items evaluated (for the evaluation budget).
	Items int `json:"items"`
	// Tokens the model scored for this evaluation (eval.TaskResult.Tokens;
	// the same whether the scores were computed or came from the cache, so
	// the compute budget is charged the same either way).
	Tokens int64 `json:"tokens,omitempty"`
	Cached bool  `json:"cached,omitempty"`
}

// ---------------------------------------------------------------- Publish

// PublishTarget says where the winner goes. Kinds: "path" (copy the GGUF to
// Path, atomically), "store" (name it runs/<Name>/winner in the store),
// "ollama" (CreateBlob + Create on the server at Host, model Name).
type PublishTarget struct {
	Kind string `json:"kind"`
	Path string `json:"path,omitempty"`
	Name string `json:"name,omitempty"`
	Host string `json:"host,omitempty"`
}

// LineageMember is one member of a population as recorded for a lineage.
type LineageMember struct {
	ID      int      `json:"id"`
	Ref     ModelRef `json:"ref"`
	Fitness float64  `json:"fitness"`
}

type PublishInput struct {
	Run    string        `json:"run"`
	Model  ModelRef      `json:"model"`
	Target PublishTarget `json:"target"`
	// Lineage and Population: when Lineage is set, the population is also
	// written to lineages/<Lineage>/population.json so a later run (e.g. a
	// nightly schedule) can continue from it.
	Lineage    string          `json:"lineage,omitempty"`
	Population []LineageMember `json:"population,omitempty"`
	// Base is recorded with the lineage so a continued run can still use
	// merge methods that need a base model.
	Base ModelRef `json:"base,omitempty"`
}

type PublishOutput struct {
	// Location: path, store key or ollama model name where the winner is.
	Location string `json:"location"`
}

// WithDefaults fills what a fine-tune's parameters leave to the activity.
func (p FineTuneParams) WithDefaults() FineTuneParams {
	if p.Method == "" {
		p.Method = FineTuneFull
	}
	if p.Examples == 0 {
		p.Examples = DefaultFineTuneExamples
	}
	if p.CheckpointEvery == 0 {
		p.CheckpointEvery = DefaultCheckpointEvery
	}
	if p.Method == FineTuneFull {
		p.Rank, p.Alpha = 0, 0 // not used: keep them out of the output key
	}
	return p
}

// Defaults of a fine-tune the workflow leaves to the activity.
const (
	DefaultFineTuneExamples = 256
	DefaultCheckpointEvery  = 20
	maxFineTuneExamples     = 1_000_000
)

// Check names every problem of parameters that went through WithDefaults
// (fields relative to the parameters; the dataset is checked where the
// datasets are known, in the activity). The one check of fine-tune
// parameters: the run config's init.demo.fine_tune and the FineTune activity
// both use it.
func (p FineTuneParams) Check() []*FieldError {
	pr := &problems{}
	switch {
	case p.Method != FineTuneFull && p.Method != FineTuneLoRA:
		pr.bad("method", "%q, want full or lora", p.Method)
	}
	if !(p.LR > 0) || !finite(p.LR) || p.LR > 1 {
		pr.bad("lr", "%g, want within (0, 1]", p.LR)
	}
	if p.Steps < 1 || p.Steps > MaxFineTuneSteps {
		pr.bad("steps", "%d, want 1..%d", p.Steps, MaxFineTuneSteps)
	}
	if p.Examples < 1 || p.Examples > maxFineTuneExamples {
		pr.bad("examples", "%d, want 1..%d", p.Examples, maxFineTuneExamples)
	}
	if p.BatchSize < 0 || p.BatchSize > 4096 {
		pr.bad("batch_size", "%d, want 0..4096", p.BatchSize)
	}
	if p.CheckpointEvery < 0 {
		pr.bad("checkpoint_every", "%d is negative", p.CheckpointEvery)
	}
	if p.Method == FineTuneLoRA && (p.Rank < 0 || p.Alpha < 0 || !finite(p.Alpha)) {
		pr.bad("rank", "rank/alpha %d/%g must not be negative", p.Rank, p.Alpha)
	}
	return pr.errs
}

// ---------------------------------------------------------------- Diversity

// DiversityInput asks how different a population is: in weight space (task
// vectors Models[i] − Ancestor, streamed by the activity) and in fitness.
type DiversityInput struct {
	Run string `json:"run,omitempty"`
	// Ancestor is the population's common ancestor: the run's base (the
	// demo's pretrained base, or init.base of an import). Empty: the run has
	// none and the models' centroid stands in (see internal/diversity).
	Ancestor ModelRef   `json:"ancestor,omitempty"`
	Models   []ModelRef `json:"models"`
	Scores   []float64  `json:"scores"`
	Label    string     `json:"label,omitempty"`
}

type DiversityOutput struct {
	GenDiversity
	Cosine [][]float64 `json:"cosine,omitempty"`
	Cached bool        `json:"cached,omitempty"`
}
