package train

import (
	"errors"
	"fmt"
	"math"

	"github.com/evomerge/evomerge/internal/llm"
)

// Config holds a fine-tune's hyperparameters. Zero fields take the defaults listed.
type Config struct {
	Method      string   `json:"method"`                 // "full" (default) or "lora"
	Steps       int      `json:"steps"`                  // optimizer steps (required)
	LR          float64  `json:"lr"`                     // peak learning rate (required)
	Warmup      int      `json:"warmup,omitempty"`       // linear warm-up steps
	Schedule    string   `json:"schedule,omitempty"`     // "cosine" (default), "linear" or "constant" after warm-up
	MinLRRatio  *float64 `json:"min_lr_ratio,omitempty"` // final lr as a fraction of the peak (default 0.1)
	Beta1       float64  `json:"beta1,omitempty"`        // default 0.9
	Beta2       float64  `json:"beta2,omitempty"`        // default 0.999
	Eps         float64  `json:"eps,omitempty"`          // default 1e-8
	WeightDecay float64  `json:"weight_decay,omitempty"` // decoupled, on matrices only
	BatchSize   int      `json:"batch_size,omitempty"`   // sequences per micro-batch (default 8)
	Accum       int      `json:"accum,omitempty"`        // micro-batches per step (default 1)
	ClipNorm    *float64 `json:"clip_norm,omitempty"`    // global gradient norm limit (default 1; 0 = none)
	Rank        int      `json:"rank,omitempty"`         // LoRA rank (default 8)
	Alpha       float64  `json:"alpha,omitempty"`        // LoRA alpha (default 2·rank)
	Targets     []string `json:"targets,omitempty"`      // LoRA projections (default q, v)
	Seed        uint64   `json:"seed"`
	// CheckpointEvery writes a checkpoint every this many steps (0: only on cancellation).
	CheckpointEvery int `json:"checkpoint_every,omitempty"`
}

func f64(v float64) *float64 { return &v }

// withDefaults fills zero fields and checks the result against the model.
func (c Config) withDefaults(m llm.Config) (Config, error) {
	if c.Method == "" {
		c.Method = "full"
	}
	if c.Schedule == "" {
		c.Schedule = "cosine"
	}
	if c.MinLRRatio == nil {
		c.MinLRRatio = f64(0.1)
	}
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	if c.BatchSize == 0 {
		c.BatchSize = 8
	}
	if c.Accum == 0 {
		c.Accum = 1
	}
	if c.ClipNorm == nil {
		c.ClipNorm = f64(1)
	}
	if c.Method == "lora" {
		if c.Rank == 0 {
			c.Rank = 8
		}
		if c.Alpha == 0 {
			c.Alpha = 2 * float64(c.Rank)
		}
		if len(c.Targets) == 0 {
			c.Targets = []string{"q", "v"}
		}
	}
	switch {
	case c.Method != "full" && c.Method != "lora":
		return c, fmt.Errorf("train: method %q is not full or lora", c.Method)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return c, fmt.Errorf("train: learning rate must be > 0, got %g", c.LR)
	case c.Steps <= 0:
		return c, fmt.Errorf("train: steps must be > 0, got %d", c.Steps)
	case c.Warmup < 0 || c.Warmup > c.Steps:
		return c, fmt.Errorf("train: warmup %d must be within 0..steps (%d)", c.Warmup, c.Steps)
	case c.Schedule != "cosine" && c.Schedule != "linear" && c.Schedule != "constant":
		return c, fmt.Errorf("train: schedule %q is not cosine, linear or constant", c.Schedule)
	case *c.MinLRRatio < 0 || *c.MinLRRatio > 1:
		return c, fmt.Errorf("train: min_lr_ratio %g must be within 0..1", *c.MinLRRatio)
	case c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1:
		return c, fmt.Errorf("train: betas (%g, %g) must be within [0, 1)", c.Beta1, c.Beta2)
	case c.Eps <= 0 || c.WeightDecay < 0:
		return c, fmt.Errorf("train: eps %g must be > 0 and weight decay %g >= 0", c.Eps, c.WeightDecay)
	case c.BatchSize < 1 || c.BatchSize > 4096 || c.Accum < 1 || c.Accum > 4096:
		return c, fmt.Errorf("train: batch size %d and accum %d must be within 1..4096", c.BatchSize, c.Accum)
	case *c.ClipNorm < 0:
		return c, fmt.Errorf("train: clip_norm %g must be >= 0", *c.ClipNorm)
	case c.CheckpointEvery < 0:
		return c, fmt.Errorf("train: checkpoint_every %d must be >= 0", c.CheckpointEvery)
	}
	if c.Method == "lora" {
		if c.Rank < 1 || c.Rank > min(m.Dim, m.HeadDim()*m.KVHeads) {
			return c, fmt.Errorf("train: LoRA rank %d must be within 1..%d (the smallest adapted dimension)", c.Rank, min(m.Dim, m.HeadDim()*m.KVHeads))
		}
		if !(c.Alpha > 0) {
			return c, fmt.Errorf("train: LoRA alpha must be > 0, got %g", c.Alpha)
		}
		seen := map[string]bool{}
		for _, t := range c.Targets {
			if _, ok := llm.ParseProj(t); !ok {
				return c, fmt.Errorf("train: LoRA target %q is not one of q, k, v, o, gate, up, down", t)
			}
			if seen[t] {
				return c, fmt.Errorf("train: LoRA target %q listed twice", t)
			}
			seen[t] = true
		}
	}
	return c, nil
}

// lrAt is the learning rate of step (0-based): linear warm-up, then the schedule down to MinLRRatio·LR.
func (c Config) lrAt(step int) float64 {
	if step < c.Warmup {
		return c.LR * float64(step+1) / float64(c.Warmup)
	}
	if c.Schedule == "constant" || c.Steps-c.Warmup <= 1 {
		return c.LR
	}
	progress := float64(step-c.Warmup) / float64(c.Steps-c.Warmup-1)
	floor := c.LR * *c.MinLRRatio
	if c.Schedule == "linear" {
		return c.LR - (c.LR-floor)*progress
	}
	return floor + (c.LR-floor)*0.5*(1+math.Cos(math.Pi*progress))
}

// ErrDiverged reports a fine-tune whose loss became NaN or infinite: the mutation failed, the model is discarded.
var ErrDiverged = errors.New("train: loss diverged")
