package activities

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

const arcLines = `{"id":"q1","question":"Which gas do plants take in?","choices":{"text":["oxygen","carbon dioxide"],"label":["A","B"]},"answerKey":"B"}
{"id":"q2","question":"What is frozen water called?","choices":{"text":["steam","ice"],"label":["A","B"]},"answerKey":"B"}
`

// Evaluate reads a native benchmark from the store by reference. A store
// object whose bytes no longer match its hash fails the attempt with a
// retryable Corrupt error naming the field (never scored from bad bytes);
// once the object is whole again, the next attempt fetches, verifies and
// scores it.
func TestEvaluateFetchesDataByStoreReferenceAndRefusesCorruptObjects(t *testing.T) {
	f := newFixture(t)
	refs := f.importModels(t, wideModel(t, f.dir, 1), wideModel(t, f.dir, 2))
	src := filepath.Join(f.dir, "arc.jsonl")
	require.NoError(t, os.WriteFile(src, []byte(arcLines), 0o644))
	r, err := f.st.PutFile(t.Context(), store.Data, src)
	require.NoError(t, err)
	suite := workflows.SuiteSpec{Name: "fitness.dev", Split: workflows.SplitValidation, Seed: 1, Tasks: []workflows.TaskSpec{
		{Name: "arc", Source: "arc", Path: workflows.StoreRef(r.Hex()), Weight: 1},
	}}
	obj := filepath.Join(f.dir, "store", "data", r.Hex())
	require.NoError(t, os.WriteFile(obj, []byte(arcLines[:40]), 0o644))
	_, err = f.env.ExecuteActivity(workflows.ActivityEvaluate, workflows.EvaluateInput{Model: refs[0], Suite: suite})
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, workflows.ErrTypeCorrupt, ae.Type())
	require.False(t, ae.NonRetryable(), "a corrupt object is fetched again on the next attempt")
	require.Contains(t, err.Error(), "suite.tasks[0].path store:"+r.Hex())
	require.Contains(t, err.Error(), "is corrupt")

	require.NoError(t, os.WriteFile(obj, []byte(arcLines), 0o644))
	var out workflows.EvaluateOutput
	run(t, f.env, workflows.ActivityEvaluate, &out, workflows.EvaluateInput{Model: refs[0], Suite: suite})
	require.Len(t, out.Tasks, 1)
	require.Equal(t, "arc", out.Tasks[0].Family)
	require.Equal(t, 2, out.Tasks[0].N)
	require.Equal(t, "acc_norm", out.Tasks[0].Metric)

	// A reference to nothing in the store is bad input, never retried.
	suite.Tasks[0].Path = workflows.StoreRef(r.Hex()[:63] + "0")
	if suite.Tasks[0].Path == workflows.StoreRef(r.Hex()) {
		suite.Tasks[0].Path = workflows.StoreRef(r.Hex()[:63] + "1")
	}
	_, err = f.env.ExecuteActivity(workflows.ActivityEvaluate, workflows.EvaluateInput{Model: refs[0], Suite: suite})
	requireAppError(t, err, workflows.ErrTypeBadInput, "is not in the store")
}

// FineTune trains on its drawn mixture of store datasets, and refuses a chat
// dataset for a base model without a chat template (none given).
func TestFineTuneOnStoreDatasets(t *testing.T) {
	f := newFixture(t)
	refs := f.importModels(t, wideModel(t, f.dir, 1), wideModel(t, f.dir, 2))
	put := func(name, body string) string {
		p := filepath.Join(f.dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		r, err := f.st.PutFile(t.Context(), store.Data, p)
		require.NoError(t, err)
		return workflows.StoreRef(r.Hex())
	}
	pairs := put("pairs.jsonl", `{"prompt":"2+2=","completion":"4"}`+"\n"+`{"text":"hello world"}`+"\n")
	chat := put("chat.jsonl", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}`+"\n")
	p := workflows.FineTuneParams{Method: "full", LR: 1e-3, Steps: 2, Examples: 4, BatchSize: 2, Seed: 3,
		Mixture: []workflows.MixturePart{{Path: pairs, Weight: 0.5}, {Family: "addition", Weight: 0.5}}}
	var out workflows.FineTuneOutput
	run(t, f.env, workflows.ActivityFineTune, &out, workflows.FineTuneInput{Base: refs[0], Params: p})
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, out.Ref)
	require.Positive(t, out.Tokens)

	p.Mixture = []workflows.MixturePart{{Path: chat, Weight: 1}}
	_, err := f.env.ExecuteActivity(workflows.ActivityFineTune, workflows.FineTuneInput{Base: refs[0], Params: p})
	requireAppError(t, err, workflows.ErrTypeBadInput, "params.mixture[0].path "+chat)
	require.ErrorContains(t, err, "chat template")
	p.ChatTemplate = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
	run(t, f.env, workflows.ActivityFineTune, &out, workflows.FineTuneInput{Base: refs[0], Params: p})
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, out.Ref)
}

// wideModel is a tiny model with room for benchmark questions.
func wideModel(t *testing.T, dir string, seed uint64) string {
	t.Helper()
	cfg := tinyCfg
	cfg.Context = 160
	m, err := llm.NewTiny(cfg, seed, llm.Options{Threads: 1})
	require.NoError(t, err)
	defer m.Close()
	p := filepath.Join(dir, fmt.Sprintf("wide%d.gguf", seed))
	_, err = m.Save(p)
	require.NoError(t, err)
	return p
}
