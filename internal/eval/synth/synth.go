// Package synth generates the synthetic task pack used by the demo and the
// tests: small task families a byte-level tiny model can learn on a CPU in
// minutes, each exercising a different skill so that models fine-tuned on
// different families differ (which is what makes crossover worth doing).
//
// Every item is a function of (family, split, n, seed). The split of an item
// is fixed by a hash of its prompt, so train, validation and test never
// share a prompt, whatever seeds are used.
package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/evomerge/evomerge/internal/eval/rng"
	"github.com/evomerge/evomerge/internal/eval/task"
)

// Version changes whenever a family's item format or distribution changes.
const Version = "synth-5"

// Split names a partition of a family's item space.
type Split string

const (
	Train      Split = "train"
	Validation Split = "validation"
	Test       Split = "test"
)

// ParseSplit checks a split name; "dev" is accepted for validation.
func ParseSplit(s string) (Split, error) {
	switch Split(s) {
	case Train, Validation, Test:
		return Split(s), nil
	case "dev":
		return Validation, nil
	}
	return "", fmt.Errorf("unknown split %q (want train, validation (dev) or test)", s)
}

// family draws one candidate item; the caller keeps it if its prompt hashes
// into the wanted split.
type family struct {
	kind task.Kind
	draw func(r *rng.Rand) task.Item
}

var families = map[string]family{
	"addition":   {task.Generate, drawAddition},
	"comparison": {task.MultipleChoice, drawComparison},
	"sequence":   {task.MultipleChoice, drawSequence},
	"reversal":   {task.MultipleChoice, drawReversal},
}

// Families lists the family names in a fixed order.
func Families() []string {
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Kind returns how the family's items are scored.
func Kind(name string) (task.Kind, error) {
	f, err := lookup(name)
	return f.kind, err
}

func lookup(name string) (family, error) {
	f, ok := families[name]
	if !ok {
		return family{}, fmt.Errorf("unknown synthetic family %q (want one of %v)", name, Families())
	}
	return f, nil
}

// SplitOf returns the split a prompt belongs to: 80% train, 10% validation,
// 10% test by a hash of family and prompt.
func SplitOf(familyName, query string) Split {
	h := sha256.Sum256([]byte(familyName + "\x00" + query))
	switch b := binary.LittleEndian.Uint64(h[:8]) % 100; {
	case b < 80:
		return Train
	case b < 90:
		return Validation
	default:
		return Test
	}
}

// maxMisses bounds the search for a new item: that many draws in a row
// without a new item of the split means the split is (nearly) exhausted.
// Even the last unseen item of the smallest family (addition: 10,000
// prompts in all) is found within this many draws with near certainty.
const maxMisses = 100_000

// Generate returns n distinct items of the family from the split. The same
// arguments always give the same items in the same order.
func Generate(familyName string, split Split, n int, seed uint64) ([]task.Item, error) {
	f, err := lookup(familyName)
	if err != nil {
		return nil, err
	}
	split, err = ParseSplit(string(split))
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("synth %s: n = %d, want > 0", familyName, n)
	}
	r := rng.Derive(seed, "synth", familyName, string(split))
	seen := make(map[string]bool, n)
	items := make([]task.Item, 0, n)
	for misses := 0; len(items) < n; {
		if misses > maxMisses {
			return nil, fmt.Errorf("synth %s: split %s has fewer than %d distinct items (found %d)", familyName, split, n, len(items))
		}
		it := f.draw(r)
		if seen[it.Query] || SplitOf(familyName, it.Query) != split {
			misses++
			continue
		}
		misses = 0
		seen[it.Query] = true
		it.ID = fmt.Sprintf("synth/%s/%s/%d", familyName, split, len(items))
		if err := it.Validate(f.kind); err != nil {
			return nil, fmt.Errorf("synth %s: generator bug: %w", familyName, err)
		}
		items = append(items, it)
	}
	return items, nil
}

// Example returns an item as a training pair: the prompt and the correct
// completion (" " + answer, ending in a newline so a model learns to stop).
func Example(it task.Item, kind task.Kind) (prompt, completion string, err error) {
	switch kind {
	case task.MultipleChoice:
		if it.Gold < 0 || it.Gold >= len(it.Choices) {
			return "", "", fmt.Errorf("item %s: gold %d out of range", it.ID, it.Gold)
		}
		return it.Query, " " + it.Choices[it.Gold] + "\n", nil
	case task.Generate:
		return it.Query, " " + it.Answer + "\n", nil
	}
	return "", "", fmt.Errorf("item %s: no training example for kind %s", it.ID, kind)
}

// TrainJSONL writes n training examples of the family from the train split
// as {"prompt":..., "completion":...} lines.
func TrainJSONL(familyName string, n int, seed uint64, w io.Writer) error {
	pairs, err := TrainPairs(familyName, n, seed)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, p := range pairs {
		if err := enc.Encode(struct {
			Prompt     string `json:"prompt"`
			Completion string `json:"completion"`
		}{p.Prompt, p.Completion}); err != nil {
			return fmt.Errorf("synth %s: write training data: %w", familyName, err)
		}
	}
	return nil
}

// addition: two numbers below 100, answered GSM8K-style (working, then
// "#### N") so the same extraction rules as GSM8K apply.
func drawAddition(r *rng.Rand) task.Item {
	a, b := r.IntN(100), r.IntN(100)
	// A worked solution, digit by digit from the right with the carry, as
	// GSM8K answers carry their working before "#### N": a tiny model
	// learns the hundred digit facts much sooner than the whole table.
	units := a%10 + b%10
	tens := a/10 + b/10 + units/10
	work := fmt.Sprintf("%d+%d=%d %d+%d", a%10, b%10, units, a/10, b/10)
	if units >= 10 {
		work += "+1"
	}
	work += fmt.Sprintf("=%d", tens)
	return task.Item{
		Query:  fmt.Sprintf("Q: %d+%d\nA:", a, b),
		Answer: work + " #### " + strconv.Itoa(a+b),
	}
}

// comparison: pick the largest of three distinct numbers; the choices are
// the numbers in prompt order, so their lengths differ (acc vs acc_norm).
// No number is a prefix of another (see mcFromCandidates).
func drawComparison(r *rng.Rand) task.Item {
	var nums []int
	for nums == nil || prefixRelated(ints(nums)) {
		nums = distinct(r, 3, 1000)
	}
	gold := 0
	for i, v := range nums {
		if v > nums[gold] {
			gold = i
		}
	}
	choices := make([]string, 3)
	for i, v := range nums {
		choices[i] = strconv.Itoa(v)
	}
	return task.Item{
		Query:   fmt.Sprintf("Largest: %s %s %s\nA:", choices[0], choices[1], choices[2]),
		Choices: choices,
		Gold:    gold,
	}
}

// sequence: continue a repeating pattern of letters ("k q z k q z k" ->
// "q"), an in-context copying skill; the distractors are the pattern's
// other letters and random ones.
func drawSequence(r *rng.Rand) task.Item {
	period := r.Range(2, 4)
	pattern := make([]byte, 0, period)
	for len(pattern) < period {
		c := byte('a' + r.IntN(26))
		if bytes.IndexByte(pattern, c) < 0 {
			pattern = append(pattern, c)
		}
	}
	shown := r.Range(2*period+1, 3*period)
	var q strings.Builder
	q.WriteString("Next:")
	for i := 0; i < shown; i++ {
		q.WriteByte(' ')
		q.WriteByte(pattern[i%period])
	}
	q.WriteString("\nA:")
	cands := []string{string(pattern[shown%period])}
	for k := 1; k < period; k++ {
		cands = append(cands, string(pattern[(shown+k)%period]))
	}
	for len(cands) < 8 {
		cands = append(cands, string(rune('a'+r.IntN(26))))
	}
	return mcFromCandidates(r, q.String(), cands)
}

// reversal: reverse a short lowercase word; distractors are the word itself,
// the answer with two neighbouring letters swapped, the answer rotated by
// one and a random shuffle of the letters.
func drawReversal(r *rng.Rand) task.Item {
	n := r.Range(4, 6)
	w := make([]byte, n)
	for i := range w {
		w[i] = byte('a' + r.IntN(26))
	}
	rev := make([]byte, n)
	for i := range w {
		rev[i] = w[n-1-i]
	}
	swapped := append([]byte(nil), rev...)
	k := r.IntN(n - 1)
	swapped[k], swapped[k+1] = swapped[k+1], swapped[k]
	rotated := append(append([]byte(nil), rev[1:]...), rev[0])
	shuffled := append([]byte(nil), w...)
	r.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	return mcFromCandidates(r, "Reverse: "+string(w)+"\nA:", []string{string(rev), string(w), string(swapped), string(rotated), string(shuffled)})
}

// mcFromCandidates keeps the correct answer (cands[0]) and up to three
// distractors, in a random order. A distractor that is a prefix of another
// choice (or has one as its prefix) is dropped: the summed log-likelihood of
// a prefix is never below that of its extension, so acc could never pick
// the longer one whatever the model knows.
func mcFromCandidates(r *rng.Rand, query string, cands []string) task.Item {
	choices := []string{cands[0]}
	for _, c := range cands[1:] {
		if len(choices) == 4 {
			break
		}
		if c != "" && !prefixRelated(append(choices[:len(choices):len(choices)], c)) {
			choices = append(choices, c)
		}
	}
	perm := r.Perm(len(choices))
	out := make([]string, len(choices))
	gold := 0
	for to, from := range perm {
		out[to] = choices[from]
		if from == 0 {
			gold = to
		}
	}
	return task.Item{Query: query, Choices: out, Gold: gold}
}

// prefixRelated reports whether any string of v is a prefix of (or equal
// to) another.
func prefixRelated(v []string) bool {
	for i := range v {
		for j := range v {
			if i != j && strings.HasPrefix(v[j], v[i]) {
				return true
			}
		}
	}
	return false
}

func distinct(r *rng.Rand, k, below int) []int {
	out := make([]int, 0, k)
	for len(out) < k {
		v := r.IntN(below)
		dup := false
		for _, o := range out {
			dup = dup || o == v
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

func ints(v []int) []string {
	s := make([]string, 0, len(v))
	for _, x := range v {
		if x >= 0 {
			s = append(s, strconv.Itoa(x))
		}
	}
	return s
}
