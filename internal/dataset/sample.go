package dataset

import (
	"fmt"

	"github.com/evomerge/evomerge/internal/eval/rng"
	"github.com/evomerge/evomerge/internal/train"
)

// Weighted is one dataset of a mixture.
type Weighted struct {
	Name     string
	Examples []train.Example
	Weight   float64
}

// Sample draws n examples from a weighted mixture with the seeded PRNG:
// each draw picks a dataset with probability proportional to its weight,
// then the next example of that dataset's seeded shuffle (without
// replacement until the dataset is used up, then a new shuffle). The same
// seed and inputs give the same examples in the same order.
func Sample(seed uint64, sets []Weighted, n int) ([]train.Example, error) {
	if n <= 0 {
		return nil, fmt.Errorf("dataset: sample size %d, want > 0", n)
	}
	total := 0.0
	for _, s := range sets {
		if s.Weight < 0 || s.Weight != s.Weight {
			return nil, fmt.Errorf("dataset %s: weight %v, want >= 0", s.Name, s.Weight)
		}
		if s.Weight > 0 && len(s.Examples) == 0 {
			return nil, fmt.Errorf("dataset %s: no examples", s.Name)
		}
		total += s.Weight
	}
	if total <= 0 {
		return nil, fmt.Errorf("dataset: no dataset with a positive weight")
	}
	r := rng.New(seed)
	orders := make([][]int, len(sets))
	next := make([]int, len(sets))
	out := make([]train.Example, 0, n)
	for len(out) < n {
		u := float64(r.Uint64()>>11) / (1 << 53) * total
		pick := -1
		for i, s := range sets {
			if s.Weight <= 0 {
				continue
			}
			pick = i
			if u < s.Weight {
				break
			}
			u -= s.Weight
		}
		if orders[pick] == nil || next[pick] == len(orders[pick]) {
			orders[pick] = r.Perm(len(sets[pick].Examples))
			next[pick] = 0
		}
		out = append(out, sets[pick].Examples[orders[pick][next[pick]]])
		next[pick]++
	}
	return out, nil
}
