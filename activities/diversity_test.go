package activities

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/diversity"
	"github.com/evomerge/evomerge/workflows"
)

// The activity gives the engine's numbers for the stored models, memoises
// them by ancestor and models, and names bad input.
func TestDiversityActivity(t *testing.T) {
	f := newFixture(t)
	paths := []string{f.tinyModel(t, 1), f.tinyModel(t, 2), f.tinyModel(t, 3)}
	refs := f.importModels(t, paths...)
	in := workflows.DiversityInput{Run: "t", Ancestor: refs[0], Models: refs[1:], Scores: []float64{0.2, 0.4}, Label: "gen 0"}
	var out workflows.DiversityOutput
	run(t, f.env, workflows.ActivityDiversity, &out, in)
	want, err := diversity.TaskVectors(t.Context(), paths[0], paths[1:], diversity.Options{})
	require.NoError(t, err)
	require.Equal(t, want.MeanDistance, out.MeanDistance)
	require.Equal(t, want.Cosine, out.Cosine)
	require.Equal(t, refs[0], out.Ancestor)
	require.InDelta(t, 0.1, out.FitnessStd, 1e-12)
	require.Equal(t, 0.2, out.FitnessMin)
	require.False(t, out.Cached)

	var again workflows.DiversityOutput
	run(t, f.env, workflows.ActivityDiversity, &again, in)
	require.True(t, again.Cached)
	require.Equal(t, out.MeanDistance, again.MeanDistance)

	// No ancestor: the centroid of the models.
	var cen workflows.DiversityOutput
	run(t, f.env, workflows.ActivityDiversity, &cen, workflows.DiversityInput{Models: refs, Scores: []float64{1, 2, 3}})
	wantCen, err := diversity.TaskVectors(t.Context(), "", paths, diversity.Options{})
	require.NoError(t, err)
	require.Equal(t, wantCen.MeanDistance, cen.MeanDistance)

	for _, c := range []struct {
		in   workflows.DiversityInput
		want string
	}{
		{workflows.DiversityInput{Models: refs[:1], Scores: []float64{1}}, "models: 1 given"},
		{workflows.DiversityInput{Models: refs, Scores: []float64{1}}, "scores: 1 given for 3"},
		{workflows.DiversityInput{Ancestor: "nope", Models: refs[:2], Scores: []float64{1, 2}}, "ancestor"},
		{workflows.DiversityInput{Models: []string{refs[0], "sha256:" + filepath.Base("0000000000000000000000000000000000000000000000000000000000000000")}, Scores: []float64{1, 2}}, "models[1]"},
	} {
		_, err := f.env.ExecuteActivity(workflows.ActivityDiversity, c.in)
		requireAppError(t, err, workflows.ErrTypeBadInput, c.want)
	}
}
