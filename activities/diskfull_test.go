package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/evomerge/evomerge/internal/faultfs"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// A worker whose disk fills up: the activity attempt fails with an error that names the path and says the
// disk is full, leaves nothing half-written in the store, and the activity succeeds after space returns or
// on another worker — through the real activity code in the Temporal test environment, on a real tmpfs
// that fills up (faultfs; the tests are skipped where mounting is not allowed).

// workerOn is a second worker: its own activities and work directory over the same store.
func workerOn(t *testing.T, st *store.Store, workDir string) *testsuite.TestActivityEnvironment {
	t.Helper()
	acts, err := New(Config{Store: st, WorkDir: workDir, Threads: 1})
	require.NoError(t, err)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts.Register(env)
	return env
}

// requireClean: the store holds no temporaries, nothing corrupt, no checkpoint pointer and no memo of the
// failed activity, and dir (the full disk) holds no leftover temporary file.
func requireClean(t *testing.T, st *store.Store, dir string) {
	t.Helper()
	ctx := context.Background()
	rep, err := st.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	for _, prefix := range []string{store.CheckpointsPrefix, "memo/"} {
		names, err := st.ListNamed(ctx, prefix)
		require.NoError(t, err)
		for _, n := range names {
			require.False(t, strings.Contains(n, "finetune") || strings.Contains(n, "merge") || strings.HasPrefix(n, store.CheckpointsPrefix),
				"the failed attempt left %s in the store", n)
		}
	}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		require.False(t, strings.HasPrefix(d.Name(), ".tmp-"), "temporary %s left on the full disk", p)
		return nil
	}))
}

// TestFineTuneCheckpointDiskFull: the worker's work directory (where checkpoints are written) is a tmpfs
// too small for one checkpoint. The attempt fails naming the checkpoint path and its directory; on a second
// worker the same activity then succeeds, and after space returns the first worker succeeds too, both with
// the bytes of a fine-tune that never met a full disk.
func TestFineTuneCheckpointDiskFull(t *testing.T) {
	model := (&fixture{dir: t.TempDir()}).tinyModel(t, 9)
	ref := newFixture(t)
	base := ref.importModels(t, model)[0]
	in := workflows.FineTuneInput{Base: base, Params: ftParams(), Label: "disk-full"}
	var want workflows.FineTuneOutput
	run(t, ref.env, workflows.ActivityFineTune, &want, in)

	f := newFixture(t)
	require.Equal(t, base, f.importModels(t, model)[0])
	full := faultfs.SmallDisk(t, 16<<10) // a checkpoint of the tiny model holds params, m and v: ~3x the model
	env := workerOn(t, f.st, full)
	_, err := env.ExecuteActivity(workflows.ActivityFineTune, in)
	require.Error(t, err)
	require.Contains(t, err.Error(), "no space left")
	require.Contains(t, err.Error(), full+"/", "the error names the path on the full disk")
	require.Contains(t, err.Error(), "checkpoint", "the error says what was being written")
	requireClean(t, f.st, full)

	// Another worker with room finishes the activity.
	var other workflows.FineTuneOutput
	run(t, workerOn(t, f.st, t.TempDir()), workflows.ActivityFineTune, &other, in)
	require.Equal(t, want.Ref, other.Ref)
	require.Equal(t, want.FinalLoss, other.FinalLoss)

	// Space returns on the first worker: a new job (another seed) succeeds there.
	faultfs.Resize(t, full, 64<<20)
	in2 := in
	in2.Params.Seed++
	var again workflows.FineTuneOutput
	run(t, env, workflows.ActivityFineTune, &again, in2)
	require.False(t, again.Cached)
	rep, err := f.st.Verify(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
}

// TestMergeStoreDiskFull: a file store on a tmpfs with room for the two parents but not the merged child.
// The merge attempt fails naming the store path, no part of the child is in the store, and once space
// returns the retried activity stores the child with the bytes of a merge that never met a full disk.
func TestMergeStoreDiskFull(t *testing.T) {
	ref := newFixture(t)
	models := []string{ref.tinyModel(t, 1), ref.tinyModel(t, 2)}
	refs := ref.importModels(t, models...)
	in := workflows.MergeInput{Run: "t", Inputs: refs, Genome: linear(0.5, 0.5), Label: "disk-full"}
	var want workflows.MergeOutput
	run(t, ref.env, workflows.ActivityMerge, &want, in)

	fi, err := os.Stat(models[0])
	require.NoError(t, err)
	disk := faultfs.SmallDisk(t, 2*fi.Size()+fi.Size()/2) // both parents fit, the child (same size) does not
	ctx := context.Background()
	st, err := store.Open(ctx, "file://"+filepath.Join(disk, "store"), store.Options{})
	require.NoError(t, err)
	for _, m := range models {
		_, err := st.PutFile(ctx, store.Models, m)
		require.NoError(t, err)
	}
	env := workerOn(t, st, t.TempDir())
	_, err = env.ExecuteActivity(workflows.ActivityMerge, in)
	require.Error(t, err)
	require.Contains(t, err.Error(), "no space left")
	require.Contains(t, err.Error(), filepath.Join(disk, "store")+"/", "the error names the path in the store")
	require.Contains(t, err.Error(), "store merged child")
	requireClean(t, st, disk)
	has, err := st.Has(ctx, store.Models, store.Ref(want.Ref))
	require.NoError(t, err)
	require.False(t, has, "a child that could not be written is in the store")

	faultfs.Resize(t, disk, 64<<20)
	var got workflows.MergeOutput
	run(t, env, workflows.ActivityMerge, &got, in)
	require.Equal(t, want.Ref, got.Ref)
	l, err := st.Fetch(ctx, store.Models, store.Ref(got.Ref))
	require.NoError(t, err)
	l.Close()
	rep, err := st.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
}
