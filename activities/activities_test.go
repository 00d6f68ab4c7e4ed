package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/internal/store/s3test"
	"github.com/evomerge/evomerge/workflows"
)

var tinyCfg = llm.Config{Vocab: llm.ByteVocabLen, Dim: 32, Layers: 1, Heads: 2, KVHeads: 1, FFN: 64, Context: 32, RopeBase: 10000, NormEps: 1e-5}

type fixture struct {
	acts *Activities
	st   *store.Store
	env  *testsuite.TestActivityEnvironment
	dir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "file://"+filepath.Join(dir, "store"), store.Options{})
	require.NoError(t, err)
	acts, err := New(Config{Store: st, WorkDir: filepath.Join(dir, "work"), Threads: 1})
	require.NoError(t, err)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts.Register(env)
	return &fixture{acts: acts, st: st, env: env, dir: dir}
}

// tinyModel writes a random tiny llama GGUF and returns its path.
func (f *fixture) tinyModel(t *testing.T, seed uint64) string {
	t.Helper()
	m, err := llm.NewTiny(tinyCfg, seed, llm.Options{Threads: 1})
	require.NoError(t, err)
	defer m.Close()
	p := filepath.Join(f.dir, "m"+hex.EncodeToString([]byte{byte(seed)})+".gguf")
	_, err = m.Save(p)
	require.NoError(t, err)
	return p
}

func (f *fixture) importModels(t *testing.T, paths ...string) []string {
	t.Helper()
	var out workflows.InitPopulationOutput
	run(t, f.env, workflows.ActivityInitPopulation, &out, workflows.InitPopulationInput{Run: "t", Size: max(2, len(paths)), Models: paths})
	var refs []string
	for _, m := range out.Members {
		refs = append(refs, m.Ref)
	}
	return refs
}

func run(t *testing.T, env *testsuite.TestActivityEnvironment, name string, out any, in any) {
	t.Helper()
	val, err := env.ExecuteActivity(name, in)
	require.NoError(t, err)
	require.NoError(t, val.Get(out))
}

// requireAppError checks that err is a non-retryable application error of
// type typ whose message mentions want.
func requireAppError(t *testing.T, err error, typ, want string) {
	t.Helper()
	require.Error(t, err)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "not an application error: %v", err)
	require.Equal(t, typ, ae.Type(), err.Error())
	require.True(t, ae.NonRetryable(), "retryable: %v", err)
	require.Contains(t, err.Error(), want)
}

func fileRef(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func linear(w0, w1 float64) workflows.Genome {
	return workflows.Genome{Method: "linear", Base: -1, PerModel: []map[string]workflows.Param{
		{"weight": {Anchors: []float64{w0}}}, {"weight": {Anchors: []float64{w1}}},
	}}
}

func TestImportIsContentAddressed(t *testing.T) {
	f := newFixture(t)
	a, b := f.tinyModel(t, 1), f.tinyModel(t, 2)
	refs := f.importModels(t, a, b, "file://"+a)
	require.Equal(t, []string{fileRef(t, a), fileRef(t, b), fileRef(t, a)}, refs)
	// A reference already in the store is accepted as is.
	require.Equal(t, refs[:1], f.importModels(t, refs[0]))

	_, err := f.env.ExecuteActivity(workflows.ActivityInitPopulation, workflows.InitPopulationInput{Size: 1, Models: []string{a}})
	requireAppError(t, err, workflows.ErrTypeBadInput, "size")
	notGGUF := filepath.Join(f.dir, "notes.txt")
	require.NoError(t, os.WriteFile(notGGUF, []byte("hello"), 0o644))
	_, err = f.env.ExecuteActivity(workflows.ActivityInitPopulation, workflows.InitPopulationInput{Size: 2, Models: []string{a, notGGUF}})
	requireAppError(t, err, workflows.ErrTypeBadInput, "models[1]")
	_, err = f.env.ExecuteActivity(workflows.ActivityInitPopulation, workflows.InitPopulationInput{Size: 2, Models: []string{a, filepath.Join(f.dir, "missing.gguf")}})
	requireAppError(t, err, workflows.ErrTypeBadInput, "missing.gguf")
	_, err = f.env.ExecuteActivity(workflows.ActivityInitPopulation, workflows.InitPopulationInput{Size: 2, Models: []string{a, "sha256:" + strings.Repeat("0", 64)}})
	requireAppError(t, err, workflows.ErrTypeBadInput, "not in the store")
}

func TestMergeStoresChildAndIsMemoised(t *testing.T) {
	f := newFixture(t)
	refs := f.importModels(t, f.tinyModel(t, 1), f.tinyModel(t, 2))

	var out workflows.MergeOutput
	in := workflows.MergeInput{Run: "t", Inputs: refs, Genome: linear(0.5, 0.5), Label: "linear #0 × #1"}
	run(t, f.env, workflows.ActivityMerge, &out, in)
	require.False(t, out.Cached)
	require.NotContains(t, refs, out.Ref)

	// The child is a loadable model in the store under its hash.
	l, err := f.st.Fetch(context.Background(), store.Models, store.Ref(out.Ref))
	require.NoError(t, err)
	m, err := llm.Load(l.Path, llm.Options{Threads: 1})
	require.NoError(t, err)
	m.Close()
	l.Close()

	// Same input: returned from the memo without merging again.
	var again workflows.MergeOutput
	run(t, f.env, workflows.ActivityMerge, &again, in)
	require.True(t, again.Cached)
	require.Equal(t, out.Ref, again.Ref)

	// A different genome is a different child.
	var other workflows.MergeOutput
	in.Genome = linear(0.9, 0.1)
	run(t, f.env, workflows.ActivityMerge, &other, in)
	require.NotEqual(t, out.Ref, other.Ref)
}

func TestMergeRejectsBadInput(t *testing.T) {
	f := newFixture(t)
	refs := f.importModels(t, f.tinyModel(t, 1), f.tinyModel(t, 2))
	cases := map[string]workflows.MergeInput{
		"method":            {Inputs: refs, Genome: workflows.Genome{Method: "blend", Base: -1}},
		"inputs[1]":         {Inputs: []string{refs[0], "sha256:xyz"}, Genome: linear(1, 1)},
		"inputs: no models": {Genome: linear(1, 1)},
		"not in the store":  {Inputs: []string{refs[0], "sha256:" + strings.Repeat("ab", 32)}, Genome: linear(1, 1)},
	}
	for want, in := range cases {
		_, err := f.env.ExecuteActivity(workflows.ActivityMerge, in)
		requireAppError(t, err, workflows.ErrTypeBadInput, want)
	}
}

func TestEvaluateScoresAndCaches(t *testing.T) {
	f := newFixture(t)
	refs := f.importModels(t, f.tinyModel(t, 1), f.tinyModel(t, 2))
	suite := workflows.SuiteSpec{Name: "synth", Split: "dev", Seed: 7, Tasks: []workflows.TaskSpec{
		{Family: "comparison", Weight: 1, N: 4}, {Family: "addition", Weight: 1, N: 3},
	}}
	var out workflows.EvaluateOutput
	run(t, f.env, workflows.ActivityEvaluate, &out, workflows.EvaluateInput{Model: refs[0], Suite: suite})
	require.False(t, out.Cached)
	require.Equal(t, 7, out.Items)
	require.Len(t, out.Tasks, 2)
	require.Equal(t, "comparison", out.Tasks[0].Family)
	require.GreaterOrEqual(t, out.Fitness, 0.0)
	require.LessOrEqual(t, out.Fitness, 1.0)

	var again workflows.EvaluateOutput
	run(t, f.env, workflows.ActivityEvaluate, &again, workflows.EvaluateInput{Model: refs[0], Suite: suite})
	require.True(t, again.Cached)
	require.Equal(t, 0, again.Items, "cached items do not count against the budget")
	// Tokens are the evaluation's cost, charged the same whether it was computed now or earlier:
	// 4 comparison items score at least 2 one-token choices, 3 additions generate at least a token,
	// and every item's prompt is run too (its BOS and at least a token of text).
	require.GreaterOrEqual(t, out.Tokens, int64(4*2+3+7*2))
	require.Equal(t, out.Tokens, again.Tokens)
	require.Equal(t, out.Fitness, again.Fitness)
	require.Equal(t, out.Tasks, again.Tasks)

	names, err := f.st.ListNamed(context.Background(), "evalcache/")
	require.NoError(t, err)
	require.Len(t, names, 2)

	bad := suite
	bad.Split = "holdout"
	_, err = f.env.ExecuteActivity(workflows.ActivityEvaluate, workflows.EvaluateInput{Model: refs[0], Suite: bad})
	requireAppError(t, err, workflows.ErrTypeBadInput, "suite.split")
	bad = suite
	bad.Tasks = []workflows.TaskSpec{{Name: "x", Source: "squad", Path: "x.jsonl"}}
	_, err = f.env.ExecuteActivity(workflows.ActivityEvaluate, workflows.EvaluateInput{Model: refs[0], Suite: bad})
	requireAppError(t, err, workflows.ErrTypeBadInput, "field source")
}

func TestPublishTargetsAndLineage(t *testing.T) {
	f := newFixture(t)
	paths := []string{f.tinyModel(t, 1), f.tinyModel(t, 2), f.tinyModel(t, 3)}
	refs := f.importModels(t, paths...)
	ctx := context.Background()

	dst := filepath.Join(f.dir, "out", "winner.gguf")
	var out workflows.PublishOutput
	pop := []workflows.LineageMember{{ID: 0, Ref: refs[0], Fitness: 0.2}, {ID: 4, Ref: refs[1], Fitness: 0.7}, {ID: 5, Ref: refs[2], Fitness: 0.5}}
	run(t, f.env, workflows.ActivityPublish, &out, workflows.PublishInput{
		Run: "r1", Model: refs[1], Target: workflows.PublishTarget{Kind: "path", Path: dst},
		Lineage: "nightly", Population: pop,
	})
	require.Equal(t, dst, out.Location)
	require.Equal(t, refs[1], fileRef(t, dst))
	left, _ := filepath.Glob(filepath.Join(f.dir, "out", ".tmp-*"))
	require.Empty(t, left)

	run(t, f.env, workflows.ActivityPublish, &out, workflows.PublishInput{Run: "r1", Model: refs[1], Target: workflows.PublishTarget{Kind: "store"}})
	data, err := f.st.GetNamed(ctx, "runs/r1/winner.json")
	require.NoError(t, err)
	var w WinnerRecord
	require.NoError(t, json.Unmarshal(data, &w))
	require.Equal(t, refs[1], w.Model)

	// A later run continues the lineage: every recorded member with its
	// recorded fitness (the workflow keeps the best Size of them).
	var init workflows.InitPopulationOutput
	run(t, f.env, workflows.ActivityInitPopulation, &init, workflows.InitPopulationInput{Run: "r2", Size: 2, ContinueLineage: "nightly", Models: paths[:1]})
	require.Equal(t, workflows.SourceLineage, init.Source)
	require.Len(t, init.Members, 3)
	for i, m := range init.Members {
		require.Equal(t, pop[i].Ref, m.Ref)
		require.Equal(t, pop[i].Fitness, m.LineageFitness)
	}
	require.Contains(t, init.Members[0].Origin, "lineage nightly")
	// An unknown lineage falls through to the next source.
	run(t, f.env, workflows.ActivityInitPopulation, &init, workflows.InitPopulationInput{Run: "r3", Size: 2, ContinueLineage: "weekly", Models: paths[:2]})
	require.Equal(t, refs[:2], []string{init.Members[0].Ref, init.Members[1].Ref})

	for want, in := range map[string]workflows.PublishInput{
		"target.kind": {Model: refs[0], Target: workflows.PublishTarget{Kind: "ftp"}},
		"model":       {Model: "nope", Target: workflows.PublishTarget{Kind: "store"}},
		"lineage":     {Model: refs[0], Target: workflows.PublishTarget{Kind: "store"}, Lineage: "../x"},
		"target.path": {Model: refs[0], Target: workflows.PublishTarget{Kind: "path"}},
		"target.name": {Model: refs[0], Target: workflows.PublishTarget{Kind: "ollama"}},
	} {
		_, err := f.env.ExecuteActivity(workflows.ActivityPublish, in)
		requireAppError(t, err, workflows.ErrTypeBadInput, want)
	}
}

// fakeOllama records what an Ollama server would receive through its API.
type fakeOllama struct {
	mu     sync.Mutex
	blobs  map[string][]byte
	create map[string]any
}

func (o *fakeOllama) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/blobs/"):
		b, _ := io.ReadAll(r.Body)
		o.blobs[strings.TrimPrefix(r.URL.Path, "/api/blobs/")] = b
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost && r.URL.Path == "/api/create":
		json.NewDecoder(r.Body).Decode(&o.create)
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"status":"parsing GGUF"}`+"\n"+`{"status":"success"}`+"\n")
	default:
		http.NotFound(w, r)
	}
}

func TestPublishToOllama(t *testing.T) {
	f := newFixture(t)
	p := f.tinyModel(t, 1)
	refs := f.importModels(t, p, p)
	fake := &fakeOllama{blobs: map[string][]byte{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var out workflows.PublishOutput
	run(t, f.env, workflows.ActivityPublish, &out, workflows.PublishInput{
		Run: "r", Model: refs[0], Target: workflows.PublishTarget{Kind: "ollama", Name: "evomerge-demo", Host: srv.URL},
	})
	require.Equal(t, "ollama:evomerge-demo", out.Location)
	blob, ok := fake.blobs[refs[0]]
	require.True(t, ok, "blob uploaded under its digest")
	sum := sha256.Sum256(blob)
	require.Equal(t, refs[0], "sha256:"+hex.EncodeToString(sum[:]))
	require.Equal(t, "evomerge-demo", fake.create["model"])
	require.Equal(t, map[string]any{"model.gguf": refs[0]}, fake.create["files"])
}

func ftParams() workflows.FineTuneParams {
	return workflows.FineTuneParams{Method: "full", LR: 3e-3, Steps: 6, Dataset: "comparison", Examples: 16, BatchSize: 2, Seed: 5, CheckpointEvery: 2}
}

func TestFineTuneResumesToTheSameBytes(t *testing.T) {
	model := (&fixture{dir: t.TempDir()}).tinyModel(t, 9)

	// Uninterrupted reference run.
	ref := newFixture(t)
	base := ref.importModels(t, model)[0]
	var want workflows.FineTuneOutput
	run(t, ref.env, workflows.ActivityFineTune, &want, workflows.FineTuneInput{Base: base, Params: ftParams()})
	require.Equal(t, 0, want.ResumedFrom)
	require.Greater(t, want.FirstLoss, 0.0)

	// A run killed after step 3: its checkpoint and pointer are in the store.
	f := newFixture(t)
	require.Equal(t, base, f.importModels(t, model)[0])
	ctx, cancel := context.WithCancel(context.Background())
	_, err := f.acts.fineTune(ctx, workflows.FineTuneInput{Base: base, Params: ftParams()}, fineTuneBeat{}, func(b fineTuneBeat) {
		if b.Step >= 3 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	names, err := f.st.ListNamed(context.Background(), "checkpoints/")
	require.NoError(t, err)
	require.Len(t, names, 1)

	// The retry finds the pointer, resumes and ends bit-identical.
	var got workflows.FineTuneOutput
	run(t, f.env, workflows.ActivityFineTune, &got, workflows.FineTuneInput{Base: base, Params: ftParams()})
	require.GreaterOrEqual(t, got.ResumedFrom, 2)
	require.Equal(t, want.Ref, got.Ref)
	require.Equal(t, want.FirstLoss, got.FirstLoss)
	require.Equal(t, want.FinalLoss, got.FinalLoss)
	require.Positive(t, want.Tokens)
	require.Equal(t, want.Tokens, got.Tokens, "a resumed fine-tune is charged its whole cost")

	// Nothing of the checkpoints is left behind, and the store verifies.
	names, err = f.st.ListNamed(context.Background(), "checkpoints/")
	require.NoError(t, err)
	require.Empty(t, names)
	objs, err := f.st.List(context.Background())
	require.NoError(t, err)
	for _, o := range objs {
		require.False(t, strings.HasPrefix(o.Key, "blobs/"), "leftover checkpoint %s", o.Key)
	}
	rep, err := f.st.Verify(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())

	// Memoised: the same job returns at once.
	run(t, f.env, workflows.ActivityFineTune, &got, workflows.FineTuneInput{Base: base, Params: ftParams()})
	require.True(t, got.Cached)
	require.Equal(t, want.Ref, got.Ref)
}

func TestFineTuneResumesFromHeartbeatDetails(t *testing.T) {
	f := newFixture(t)
	base := f.importModels(t, f.tinyModel(t, 9))[0]
	ctx, cancel := context.WithCancel(context.Background())
	var last fineTuneBeat
	_, err := f.acts.fineTune(ctx, workflows.FineTuneInput{Base: base, Params: ftParams()}, fineTuneBeat{}, func(b fineTuneBeat) {
		last = b
		if b.Step >= 4 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NotEmpty(t, last.Checkpoint)
	// Only the heartbeat knows the checkpoint now.
	names, _ := f.st.ListNamed(context.Background(), "checkpoints/")
	for _, n := range names {
		require.NoError(t, f.st.DeleteNamed(context.Background(), n))
	}
	f.env.SetHeartbeatDetails(last)
	var got workflows.FineTuneOutput
	run(t, f.env, workflows.ActivityFineTune, &got, workflows.FineTuneInput{Base: base, Params: ftParams()})
	require.Equal(t, last.Step, got.ResumedFrom)
}

func TestFineTuneRejectsBadParams(t *testing.T) {
	f := newFixture(t)
	base := f.importModels(t, f.tinyModel(t, 9))[0]
	for want, mod := range map[string]func(*workflows.FineTuneParams){
		"params.method":  func(p *workflows.FineTuneParams) { p.Method = "qlora" },
		"params.lr":      func(p *workflows.FineTuneParams) { p.LR = 0 },
		"params.steps":   func(p *workflows.FineTuneParams) { p.Steps = 0 },
		"params.dataset": func(p *workflows.FineTuneParams) { p.Dataset = "poetry" },
	} {
		p := ftParams()
		mod(&p)
		_, err := f.env.ExecuteActivity(workflows.ActivityFineTune, workflows.FineTuneInput{Base: base, Params: p})
		requireAppError(t, err, workflows.ErrTypeBadInput, want)
	}
	_, err := f.env.ExecuteActivity(workflows.ActivityFineTune, workflows.FineTuneInput{Base: "sha256:00", Params: ftParams()})
	requireAppError(t, err, workflows.ErrTypeBadInput, "base")
}

func TestDemoPopulationIsCached(t *testing.T) {
	f := newFixture(t)
	in := workflows.InitPopulationInput{Run: "demo", Seed: 3, Size: 3, Demo: &workflows.DemoSpec{
		Model:         workflows.TinyModel{Layers: 1, Dim: 32, Heads: 2, KVHeads: 1, FFN: 64, Context: 48},
		PretrainSteps: 3, PretrainLR: 3e-3,
		Families: []string{"comparison", "addition"},
		FineTune: workflows.FineTuneParams{Method: "full", LR: 2e-3, Steps: 2, Examples: 8, BatchSize: 2},
	}}
	var out workflows.InitPopulationOutput
	run(t, f.env, workflows.ActivityInitPopulation, &out, in)
	require.False(t, out.Cached)
	require.Len(t, out.Members, 3)
	require.NotEmpty(t, out.Base)
	seen := map[string]bool{out.Base: true}
	for _, m := range out.Members {
		require.False(t, seen[m.Ref], "members and base are distinct models")
		seen[m.Ref] = true
	}
	require.Contains(t, out.Members[1].Origin, "on addition")

	var again workflows.InitPopulationOutput
	run(t, f.env, workflows.ActivityInitPopulation, &again, in)
	require.True(t, again.Cached)
	require.Equal(t, out.Members, again.Members)

	bad := in
	demo := *in.Demo
	demo.Model.Heads = 3
	bad.Demo = &demo
	_, err := f.env.ExecuteActivity(workflows.ActivityInitPopulation, bad)
	requireAppError(t, err, workflows.ErrTypeBadInput, "demo.model")
}

// TestActivitiesOnS3Store runs import, merge, fine-tune and evaluate against a
// real S3 server: objects go through the worker cache and are verified there.
func TestActivitiesOnS3Store(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	st, err := store.Open(ctx, srv.StoreURL("acts"), store.Options{CacheDir: t.TempDir(), CacheLimit: 1 << 20})
	require.NoError(t, err)
	acts, err := New(Config{Store: st, WorkDir: t.TempDir(), Threads: 1})
	require.NoError(t, err)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts.Register(env)
	f := &fixture{acts: acts, st: st, env: env, dir: t.TempDir()}

	refs := f.importModels(t, f.tinyModel(t, 1), f.tinyModel(t, 2))
	var merged workflows.MergeOutput
	run(t, env, workflows.ActivityMerge, &merged, workflows.MergeInput{Inputs: refs, Genome: linear(0.3, 0.7)})
	var tuned workflows.FineTuneOutput
	p := ftParams()
	p.Steps = 3
	run(t, env, workflows.ActivityFineTune, &tuned, workflows.FineTuneInput{Base: merged.Ref, Params: p})
	var ev workflows.EvaluateOutput
	run(t, env, workflows.ActivityEvaluate, &ev, workflows.EvaluateInput{Model: tuned.Ref, Suite: workflows.SuiteSpec{
		Split: "dev", Seed: 1, Tasks: []workflows.TaskSpec{{Family: "comparison", N: 2}},
	}})
	require.Equal(t, tuned.Ref, ev.Model)

	// A second worker with an empty cache sees the same objects.
	st2, err := store.Open(ctx, srv.StoreURL("acts"), store.Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	l, err := st2.Fetch(ctx, store.Models, store.Ref(tuned.Ref))
	require.NoError(t, err)
	l.Close()
	rep, err := st2.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
}

// TestPublishToRealOllama runs only where an Ollama server is reachable
// ($OLLAMA_HOST): the server cannot be built from the module proxy.
func TestPublishToRealOllama(t *testing.T) {
	host := os.Getenv("OLLAMA_HOST")
	if host == "" {
		t.Skip("OLLAMA_HOST is not set: no real Ollama server to publish to (the API is covered by TestPublishToOllama)")
	}
	f := newFixture(t)
	p := f.tinyModel(t, 1)
	refs := f.importModels(t, p, p)
	var out workflows.PublishOutput
	run(t, f.env, workflows.ActivityPublish, &out, workflows.PublishInput{
		Run: "r", Model: refs[0], Target: workflows.PublishTarget{Kind: "ollama", Name: "evomerge-test-tiny", Host: host},
	})
	require.Equal(t, "ollama:evomerge-test-tiny", out.Location)
}

// keepHeartbeating calls its details function on every tick and stops when asked (before the call returns).
func TestKeepHeartbeatingTicksUntilStopped(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	stop := keepHeartbeating(context.Background(), 5*time.Millisecond, func() any {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return calls
	})
	time.Sleep(60 * time.Millisecond)
	stop()
	mu.Lock()
	n := calls
	mu.Unlock()
	if n < 2 {
		t.Fatalf("%d heartbeats in 60ms at a 5ms interval", n)
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if calls != n {
		t.Fatalf("heartbeats continued after stop: %d then %d", n, calls)
	}
}
