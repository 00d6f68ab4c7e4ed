package eval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/evomerge/evomerge/internal/eval/bench"
	"github.com/evomerge/evomerge/internal/eval/rng"
	"github.com/evomerge/evomerge/internal/eval/synth"
	"github.com/evomerge/evomerge/internal/eval/task"
)

// ScorerVersion changes whenever scoring or prompt assembly here changes in
// a way that changes scores; it is part of every task version.
const ScorerVersion = "eval-1"

// Prompt assembly, as lm-eval's defaults: the answer follows the prompt
// after one space and solved examples are separated by a blank line.
const (
	targetDelimiter  = " "
	fewshotDelimiter = "\n\n"
)

// fewshotPoolSynthetic is how many synthetic examples few-shot draws pick from.
const fewshotPoolSynthetic = 256

// prepared is a task ready to score.
type prepared struct {
	spec    TaskSpec
	items   []task.Item
	prefix  []string // per item: description + few-shot examples
	version string
	ext     *extractor
}

// prepare loads a task's items, draws its subsample and few-shot examples
// and computes its version. spec must have been through withDefaults.
func prepare(spec TaskSpec) (*prepared, error) {
	ext, err := spec.extractor()
	if err != nil {
		return nil, err
	}
	items, pool, samePool, fingerprint, err := loadItems(spec)
	if err != nil {
		return nil, err
	}
	idx := subsample(spec, len(items))
	p := &prepared{spec: spec, ext: ext}
	for _, i := range idx {
		it := items[i]
		if spec.Kind == task.Perplexity && spec.Source == SourceSynthetic {
			prompt, completion, err := synth.Example(it, mustKind(spec.Family))
			if err != nil {
				return nil, fmt.Errorf("task %s: %w", spec.Name, err)
			}
			it = task.Item{ID: it.ID, Text: prompt + completion}
		}
		exclude := -1
		if samePool {
			exclude = i
		}
		prefix, err := fewshotPrefix(spec, it, i, pool, exclude)
		if err != nil {
			return nil, err
		}
		p.items = append(p.items, it)
		p.prefix = append(p.prefix, prefix)
	}
	p.version = version(spec, fingerprint)
	return p, nil
}

func mustKind(family string) task.Kind {
	k, _ := synth.Kind(family)
	return k
}

// loadItems returns the task's items, the few-shot pool, whether the pool
// is the item list itself, and a fingerprint of the data read.
func loadItems(spec TaskSpec) (items, pool []task.Item, samePool bool, fingerprint string, err error) {
	if spec.Source == SourceSynthetic {
		items, err = synth.Generate(spec.Family, synth.Split(spec.Split), spec.N, spec.Seed)
		if err != nil {
			return nil, nil, false, "", fmt.Errorf("task %s: %w", spec.Name, err)
		}
		if spec.Fewshot > 0 {
			pool, err = synth.Generate(spec.Family, synth.Split(spec.FewshotSplit), max(fewshotPoolSynthetic, spec.Fewshot), spec.Seed)
			if err != nil {
				return nil, nil, false, "", fmt.Errorf("task %s: few-shot pool: %w", spec.Name, err)
			}
		}
		return items, pool, spec.Split == spec.FewshotSplit, synth.Version, nil
	}
	load := func(path string) ([]task.Item, string, error) {
		var its []task.Item
		var lerr error
		if spec.Source == SourceJSONL {
			its, lerr = bench.LoadGeneric(path, spec.Kind)
		} else {
			f, _ := bench.Lookup(spec.Source)
			its, lerr = f.LoadFile(path)
		}
		if lerr != nil {
			return nil, "", fmt.Errorf("task %s: %w", spec.Name, lerr)
		}
		sum, herr := fileSHA256(path)
		if herr != nil {
			return nil, "", fmt.Errorf("task %s: %w", spec.Name, herr)
		}
		return its, sum, nil
	}
	items, fingerprint, err = load(spec.Path)
	if err != nil {
		return nil, nil, false, "", err
	}
	if spec.Fewshot == 0 {
		return items, nil, false, fingerprint, nil
	}
	if spec.FewshotPath == "" {
		return items, items, true, fingerprint, nil
	}
	pool, fsum, err := load(spec.FewshotPath)
	if err != nil {
		return nil, nil, false, "", err
	}
	return items, pool, false, fingerprint + "+" + fsum, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// subsample returns the indices of the items to score, in file order: all
// of them, or a seeded draw of spec.N. Synthetic tasks already have N.
func subsample(spec TaskSpec, total int) []int {
	if spec.N == 0 || spec.N >= total || spec.Source == SourceSynthetic {
		idx := make([]int, total)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := rng.Derive(spec.Seed, "subsample", spec.Source, spec.Family).Sample(total, spec.N)
	slices.Sort(idx)
	return idx
}

// fewshotPrefix renders the description and spec.Fewshot solved examples
// drawn for item number i from pool (never pool[exclude]); examples share
// the item's group when the pool has enough of them (MMLU subjects).
func fewshotPrefix(spec TaskSpec, it task.Item, i int, pool []task.Item, exclude int) (string, error) {
	if spec.Fewshot == 0 {
		return it.Description, nil
	}
	var cands []int
	for j := range pool {
		if j == exclude || sameItem(pool[j], it) {
			continue // never show the model the item it is asked
		}
		if it.Group == "" || pool[j].Group == it.Group {
			cands = append(cands, j)
		}
	}
	if len(cands) < spec.Fewshot {
		return "", fmt.Errorf("task %s: item %s: %d few-shot examples wanted, only %d available (group %q)",
			spec.Name, it.ID, spec.Fewshot, len(cands), it.Group)
	}
	var picks []int
	if spec.FewshotSampler == SamplerFirstN {
		picks = make([]int, spec.Fewshot)
		for k := range picks {
			picks[k] = k
		}
	} else {
		// The draw depends on the item's position, not its ID (a path), so
		// every machine draws the same examples.
		r := rng.Derive(spec.Seed, "fewshot", spec.Source, spec.Family, strconv.Itoa(i))
		picks = r.Sample(len(cands), spec.Fewshot)
	}
	var b strings.Builder
	b.WriteString(it.Description)
	for _, k := range picks {
		b.WriteString(solved(pool[cands[k]], spec.Kind))
		b.WriteString(fewshotDelimiter)
	}
	return b.String(), nil
}

// sameItem reports whether two items ask the same thing.
func sameItem(a, b task.Item) bool {
	return a.Query == b.Query && a.Text == b.Text && slices.Equal(a.Contexts, b.Contexts)
}

// solved renders an item with its correct answer, as a few-shot example.
func solved(it task.Item, k task.Kind) string {
	switch k {
	case task.MultipleChoice:
		return it.Query + targetDelimiter + it.Choices[it.Gold]
	case task.MC2:
		for j, l := range it.Labels {
			if l == 1 {
				return it.Query + targetDelimiter + it.Choices[j]
			}
		}
	case task.Partial:
		return it.Contexts[it.Gold] + targetDelimiter + it.Suffix
	case task.Generate:
		return it.Query + targetDelimiter + it.Answer
	}
	return it.Text
}

// version identifies everything but (task, n, seed, fewshot) that the score
// depends on: scorer and data versions, the settings and the data bytes.
func version(spec TaskSpec, fingerprint string) string {
	s := spec
	s.Name, s.N, s.Seed, s.Fewshot, s.Weight, s.Path, s.FewshotPath = "", 0, 0, 0, 0, "", ""
	b, _ := json.Marshal(s)
	formatVersion := synth.Version
	if spec.Source == SourceJSONL {
		formatVersion = bench.GenericVersion
	} else if f, err := bench.Lookup(spec.Source); err == nil {
		formatVersion = f.Version
	}
	h := sha256.Sum256([]byte(string(b) + "\x00" + fingerprint))
	return ScorerVersion + "/" + formatVersion + "/" + hex.EncodeToString(h[:8])
}
