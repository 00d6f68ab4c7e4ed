// Package bench loads benchmark items from local files — JSONL, gzipped
// JSONL or Parquet as the Hugging Face Hub distributes them — each in the
// schema its published dataset has (ARC, HellaSwag, MMLU, TruthfulQA mc2,
// Winogrande, GSM8K) or in a generic schema for custom tasks, and applies the
// prompt formatting lm-evaluation-harness uses for that benchmark.
package bench

import "github.com/evomerge/evomerge/internal/tabular"

// Bounds on what a loader will read, so a wrong or hostile file cannot
// exhaust memory.
const (
	MaxLineBytes = tabular.MaxRecordBytes
	MaxItems     = 1_000_000
)
