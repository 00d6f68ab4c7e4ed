package synth

import "fmt"

// Pair is one training example: the prompt and the completion to learn.
type Pair struct{ Prompt, Completion string }

// TrainPairs are n training examples of a family (train split), the same ones
// TrainJSONL writes, for fine-tuning on the family.
func TrainPairs(familyName string, n int, seed uint64) ([]Pair, error) {
	kind, err := Kind(familyName)
	if err != nil {
		return nil, err
	}
	items, err := Generate(familyName, Train, n, seed)
	if err != nil {
		return nil, err
	}
	out := make([]Pair, len(items))
	for i, it := range items {
		p, c, err := Example(it, kind)
		if err != nil {
			return nil, err
		}
		out[i] = Pair{p, c}
	}
	return out, nil
}

// PretrainExamplesPerFamily sizes the demo's pre-training corpus.
const PretrainExamplesPerFamily = 256

// PretrainCorpus is the text a tiny model made from nothing is pre-trained on
// before its specialists are fine-tuned (the demo population's recipe):
// PretrainExamplesPerFamily training examples of each family, prompt and
// completion as one text, family by family.
func PretrainCorpus(families []string, seed uint64) ([]string, error) {
	if len(families) == 0 {
		return nil, fmt.Errorf("synth: no families for the pre-training corpus")
	}
	var texts []string
	for _, fam := range families {
		pairs, err := TrainPairs(fam, PretrainExamplesPerFamily, seed)
		if err != nil {
			return nil, err
		}
		for _, p := range pairs {
			texts = append(texts, p.Prompt+p.Completion)
		}
	}
	return texts, nil
}
