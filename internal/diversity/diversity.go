// Package diversity measures how different the members of a population are:
// in weight space, by the cosine similarity of their task vectors (model −
// common ancestor), streamed tensor by tensor in bounded memory; and in
// fitness, by the spread of their scores. It knows nothing of Temporal.
package diversity

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/evomerge/evomerge/internal/merge"
)

// Options tune a measurement; none of them changes the result.
type Options struct {
	// ChunkElements is how many elements of each model are in memory at
	// once (rounded up to merge.ChunkAlign); 0 = 64Ki.
	ChunkElements int
	// Progress is called after each tensor with tensors done and total.
	Progress func(done, total int)
}

const defaultChunk = 1 << 16

// Weights is the weight-space diversity of a set of models.
type Weights struct {
	Models   int   `json:"models"`
	Tensors  int   `json:"tensors"`
	Elements int64 `json:"elements"` // per model
	// Norms[i] is the L2 norm of model i's task vector.
	Norms []float64 `json:"norms"`
	// Cosine[i][j] is the cosine similarity of the task vectors of models i
	// and j (1 on the diagonal). A zero task vector (a model equal to the
	// ancestor) has no direction: its cosine is 1 with another zero vector
	// (the same model) and 0 with any other (as far as can be from a
	// direction without being opposed).
	Cosine [][]float64 `json:"cosine"`
	// MeanDistance is the mean of 1 − cos over the pairs i < j (0: all the
	// same direction, 1: orthogonal on average, up to 2: opposed).
	MeanDistance float64 `json:"mean_distance"`
	MinDistance  float64 `json:"min_distance"`
	MaxDistance  float64 `json:"max_distance"`
}

// TaskVectors streams the tensors of ancestor and models (GGUF files or
// safetensors checkpoints, every dtype internal/merge reads) and returns the
// pairwise cosines of the task vectors models[i] − ancestor over all
// tensors. Every model must have exactly the ancestor's tensors and shapes.
// Memory is len(models)+1 chunks; the sums are float64 in a fixed order, so
// the result is deterministic.
func TaskVectors(ctx context.Context, ancestor string, models []string, opts Options) (Weights, error) {
	if len(models) < 2 {
		return Weights{}, fmt.Errorf("diversity: %d models; at least 2 are needed", len(models))
	}
	anc, err := merge.OpenReader(ancestor)
	if err != nil {
		return Weights{}, fmt.Errorf("ancestor: %w", err)
	}
	defer anc.Close()
	rs := make([]*merge.Reader, len(models))
	defer func() {
		for _, r := range rs {
			if r != nil {
				r.Close()
			}
		}
	}()
	tensors := anc.Tensors()
	for i, p := range models {
		if rs[i], err = merge.OpenReader(p); err != nil {
			return Weights{}, fmt.Errorf("models[%d]: %w", i, err)
		}
		if err := sameTensors(ancestor, tensors, p, rs[i].Tensors()); err != nil {
			return Weights{}, fmt.Errorf("models[%d]: %w", i, err)
		}
	}

	chunk := int64(opts.ChunkElements)
	if chunk <= 0 {
		chunk = defaultChunk
	}
	chunk = (chunk + merge.ChunkAlign - 1) / merge.ChunkAlign * merge.ChunkAlign
	n := len(models)
	dot := make([][]float64, n) // dot[i][j] for j <= i
	for i := range dot {
		dot[i] = make([]float64, i+1)
	}
	base := make([]float32, chunk)
	vals := make([][]float32, n)
	delta := make([][]float32, n)
	for i := range vals {
		vals[i], delta[i] = make([]float32, chunk), make([]float32, chunk)
	}
	var raw []byte
	w := Weights{Models: n, Tensors: len(tensors)}
	for ti, t := range tensors {
		if err := ctx.Err(); err != nil {
			return Weights{}, err
		}
		for start := int64(0); start < t.Elements; start += chunk {
			m := min(chunk, t.Elements-start)
			if raw, err = anc.ReadFloat32(t.Name, start, base[:m], raw); err != nil {
				return Weights{}, fmt.Errorf("ancestor: %w", err)
			}
			for i, r := range rs {
				if raw, err = r.ReadFloat32(t.Name, start, vals[i][:m], raw); err != nil {
					return Weights{}, fmt.Errorf("models[%d]: %w", i, err)
				}
				d, v := delta[i][:m], vals[i][:m]
				for k := range d {
					d[k] = v[k] - base[k]
				}
			}
			for i := 0; i < n; i++ {
				for j := 0; j <= i; j++ {
					dot[i][j] += dotF64(delta[i][:m], delta[j][:m])
				}
			}
		}
		w.Elements += t.Elements
		if opts.Progress != nil {
			opts.Progress(ti+1, len(tensors))
		}
	}
	w.Norms = make([]float64, n)
	for i := range w.Norms {
		w.Norms[i] = math.Sqrt(dot[i][i])
	}
	w.Cosine = make([][]float64, n)
	for i := range w.Cosine {
		w.Cosine[i] = make([]float64, n)
	}
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			c := cosine(dot[i][j], w.Norms[i], w.Norms[j], i == j)
			w.Cosine[i][j], w.Cosine[j][i] = c, c
		}
	}
	w.MeanDistance, w.MinDistance, w.MaxDistance = distances(w.Cosine)
	return w, nil
}

// dotF64 is the dot product of one chunk, summed in float64 so a large model
// loses no precision to float32 accumulation.
func dotF64(a, b []float32) float64 {
	s := 0.0
	for k := range a {
		s += float64(a[k]) * float64(b[k])
	}
	return s
}

func cosine(dot, na, nb float64, same bool) float64 {
	switch {
	case same || (na == 0 && nb == 0):
		return 1
	case na == 0 || nb == 0:
		return 0
	}
	// Rounding can push |cos| a hair past 1.
	return max(-1, min(1, dot/(na*nb)))
}

// distances are the mean, min and max of 1 − cos over the pairs i < j.
func distances(cos [][]float64) (mean, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	pairs := 0
	for i := range cos {
		for j := i + 1; j < len(cos); j++ {
			d := 1 - cos[i][j]
			mean += d
			lo, hi = min(lo, d), max(hi, d)
			pairs++
		}
	}
	return mean / float64(pairs), lo, hi
}

func sameTensors(ancPath string, anc []merge.TensorMeta, path string, got []merge.TensorMeta) error {
	byName := make(map[string]merge.TensorMeta, len(got))
	for _, t := range got {
		byName[t.Name] = t
	}
	for _, a := range anc {
		t, ok := byName[a.Name]
		if !ok {
			return fmt.Errorf("%s has no tensor %q (the ancestor %s has)", path, a.Name, ancPath)
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(a.Shape) {
			return fmt.Errorf("%s: tensor %q has shape %v, the ancestor %s has %v", path, a.Name, t.Shape, ancPath, a.Shape)
		}
	}
	if len(got) != len(anc) {
		for _, t := range got {
			if !hasTensor(anc, t.Name) {
				return fmt.Errorf("%s: tensor %q is not in the ancestor %s", path, t.Name, ancPath)
			}
		}
		return errors.New(path + ": duplicate tensor names")
	}
	return nil
}

func hasTensor(ts []merge.TensorMeta, name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}

// Fitness is the spread of a population's scores.
type Fitness struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	// Std is the population standard deviation (divided by N: the
	// population is all there is, not a sample of something larger).
	Std float64 `json:"std"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// FitnessSpread summarises scores; an empty or non-finite input is an error.
func FitnessSpread(scores []float64) (Fitness, error) {
	if len(scores) == 0 {
		return Fitness{}, errors.New("diversity: no scores")
	}
	f := Fitness{N: len(scores), Min: math.Inf(1), Max: math.Inf(-1)}
	for i, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return Fitness{}, fmt.Errorf("diversity: scores[%d] is %v", i, s)
		}
		f.Mean += s
		f.Min, f.Max = min(f.Min, s), max(f.Max, s)
	}
	f.Mean /= float64(len(scores))
	for _, s := range scores {
		f.Std += (s - f.Mean) * (s - f.Mean)
	}
	f.Std = math.Sqrt(f.Std / float64(len(scores)))
	return f, nil
}
