package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/internal/dataset"
	"github.com/evomerge/evomerge/internal/eval"
	"github.com/evomerge/evomerge/internal/eval/bench"
	"github.com/evomerge/evomerge/internal/eval/task"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// storeFlags name the artifact store the starter uploads a run's data into:
// the one the workers use (their --store / EVOMERGE_STORE).
type storeFlags struct{ url, s3Endpoint string }

func (s *storeFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("EVOMERGE_STORE")
	if def == "" {
		def = store.DefaultURL
	}
	fs.StringVar(&s.url, "store", def, "artifact store the workers use; the run's data files are uploaded there (env EVOMERGE_STORE)")
	fs.StringVar(&s.s3Endpoint, "s3-endpoint", os.Getenv("EVOMERGE_S3_ENDPOINT"), "S3 endpoint for an s3:// store whose URL names none")
}

func (s storeFlags) open(ctx context.Context) (*store.Store, error) {
	return store.Open(ctx, s.url, store.Options{S3Endpoint: s.s3Endpoint})
}

// uploadData checks every data file of the run config (fitness.dev/test
// paths, mutation datasets) and puts it into the store under its sha256, so
// the workflow input names data only by store:<sha256> and every worker reads
// the same bytes. Each file is read as the workers will read it (a benchmark
// in its source's schema, a dataset of prompt/completion, text or chat
// records), so a missing file, a Parquet file without its columns, a bad
// record or a dataset without usable examples is refused here, naming the
// field and the file with its line or row, before anything starts. A store:
// reference is fetched and verified against its hash. The store is opened
// only when the config has data files.
func uploadData(ctx context.Context, open func(context.Context) (*store.Store, error), cfg workflows.RunConfig) (workflows.RunConfig, error) {
	cfg.Fitness.Dev = slices.Clone(cfg.Fitness.Dev)
	cfg.Fitness.Test = slices.Clone(cfg.Fitness.Test)
	cfg.Mutation.Datasets = slices.Clone(cfg.Mutation.Datasets)
	for _, l := range []struct {
		name  string
		tasks []workflows.TaskSpec
	}{{"fitness.dev", cfg.Fitness.Dev}, {"fitness.test", cfg.Fitness.Test}} {
		if err := checkSuite(l.name, l.tasks); err != nil {
			return cfg, fmt.Errorf("%s: %w", l.name, err)
		}
	}
	// The population first: its architectures, tensors and chat templates.
	models, err := checkModels(ctx, cfg)
	if err != nil {
		return cfg, err
	}
	hasData := false
	_ = cfg.DataRefs(func(string, *string) error { hasData = true; return nil })
	if !hasData {
		return cfg, nil
	}
	templates, err := chatTemplatesOf(cfg, models)
	if err != nil {
		return cfg, err
	}
	st, err := open(ctx)
	if err != nil {
		return cfg, err
	}
	check := dataChecks(cfg)
	var problems []string
	err = cfg.DataRefs(func(field string, ref *string) error {
		r, err := putData(ctx, st, field, *ref, func(local string) error {
			if c, ok := check[field]; ok {
				return c(local)
			}
			return templates.checkDataset(local) // a mutation dataset
		})
		if err != nil {
			problems = append(problems, err.Error())
			return nil
		}
		*ref = workflows.StoreRef(r.Hex())
		return nil
	})
	if err != nil {
		return cfg, err
	}
	if len(problems) > 0 {
		return cfg, fmt.Errorf("run data refused (nothing was started):\n  %s", strings.Join(problems, "\n  "))
	}
	// Copies of one file under two names are one store object: dev and test
	// sharing items shows now.
	return workflows.Prepare(cfg)
}

// putData checks and stores one data reference and returns its store ref.
func putData(ctx context.Context, st *store.Store, field, ref string, check func(local string) error) (store.Ref, error) {
	if workflows.IsStoreRef(ref) {
		r, _ := store.RefFromHex(strings.TrimPrefix(ref, workflows.StorePrefix))
		l, err := st.Fetch(ctx, store.Data, r)
		var ce *store.CorruptError
		switch {
		case errors.Is(err, store.ErrNotFound):
			return "", fmt.Errorf("%s: %s is not in the store %s", field, ref, st)
		case errors.As(err, &ce):
			return "", fmt.Errorf("%s: %s does not match the store object's bytes (their sha256 is %s)", field, ref, ce.Got)
		case err != nil:
			return "", fmt.Errorf("%s: %s: %w", field, ref, err)
		}
		defer l.Close()
		if err := check(l.Path); err != nil {
			return "", fmt.Errorf("%s: %s: %s", field, ref, strings.ReplaceAll(err.Error(), l.Path, ref))
		}
		return r, nil
	}
	if strings.HasPrefix(ref, "s3://") {
		rc, err := store.OpenURL(ctx, ref)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		r, err := st.Put(ctx, store.Data, rc)
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("%s: upload %s: %w", field, ref, err)
		}
		l, err := st.Fetch(ctx, store.Data, r)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", field, ref, err)
		}
		defer l.Close()
		if err := check(l.Path); err != nil {
			return "", fmt.Errorf("%s: %s", field, strings.ReplaceAll(err.Error(), l.Path, ref))
		}
		return r, nil
	}
	path := strings.TrimPrefix(ref, "file://")
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %s: %v", field, path, errors.Unwrap(err))
	case fi.IsDir():
		return "", fmt.Errorf("%s: %s is a directory, not a data file", field, path)
	}
	if err := check(path); err != nil {
		return "", fmt.Errorf("%s: %v", field, err)
	}
	r, err := st.PutFile(ctx, store.Data, path)
	if err != nil {
		return "", fmt.Errorf("%s: upload %s: %w", field, path, err)
	}
	return r, nil
}

// dataChecks reads each task file as its source does: the loaders of
// internal/eval/bench (Parquet columns, JSONL schema, at least one item).
func dataChecks(cfg workflows.RunConfig) map[string]func(string) error {
	checks := map[string]func(string) error{}
	for _, l := range []struct {
		name  string
		tasks []workflows.TaskSpec
	}{{"fitness.dev", cfg.Fitness.Dev}, {"fitness.test", cfg.Fitness.Test}} {
		for i, t := range l.tasks {
			c := func(local string) error { return checkTaskFile(t, local) }
			checks[fmt.Sprintf("%s[%d].path", l.name, i)] = c
			checks[fmt.Sprintf("%s[%d].fewshot_path", l.name, i)] = c
		}
	}
	return checks
}

// checkTaskFile loads a task's file with its source's loader.
func checkTaskFile(t workflows.TaskSpec, path string) error {
	var err error
	if t.Source == workflows.SourceJSONL {
		_, err = bench.LoadGeneric(path, task.Kind(t.Kind))
	} else {
		var f bench.Format
		if f, err = bench.Lookup(t.Source); err == nil {
			_, err = f.LoadFile(path)
		}
	}
	return err
}

// checkSuite is eval's own check of the tasks' settings (metrics, regexes,
// kinds) that the run config's validation leaves to the engine.
func checkSuite(name string, tasks []workflows.TaskSpec) error {
	s := eval.Suite{Name: name}
	for _, t := range workflows.TasksWithDefaults(tasks) {
		if t.Path == "" && t.Source != workflows.SourceSynthetic {
			t.Path = "unchecked"
		}
		s.Tasks = append(s.Tasks, activities.EvalTask(t, 1))
	}
	return s.Validate()
}

// chatTemplates is what chat datasets are checked with: the template to
// render them with (the config's mutation.chat_template, else the first
// population model's own, else a plain one that checks the records' shape
// only, the models' own being applied by the worker) and, when no template is
// given in the config, the first model that has none: a chat dataset is
// refused naming it.
type chatTemplates struct {
	render  *dataset.ChatTemplate
	missing string // "init.models[1] m.gguf has no chat template (...)"; "" when every model has one
}

func chatTemplatesOf(cfg workflows.RunConfig, models []popModel) (chatTemplates, error) {
	var ct chatTemplates
	if cfg.Mutation.ChatTemplate != "" {
		tpl, err := dataset.NewChatTemplate(cfg.Mutation.ChatTemplate, "", "")
		if err != nil {
			return ct, fmt.Errorf("mutation.chat_template: %w", err)
		}
		ct.render = tpl
		return ct, nil
	}
	if cfg.Init.Demo != nil && len(cfg.Init.Models) == 0 {
		ct.missing = "the demo's byte-level models have no chat template"
	}
	for _, m := range models {
		if m.field == "init.base" {
			continue // children are fine-tuned from merges of the members
		}
		switch {
		case m.template != nil && ct.render == nil:
			ct.render = m.template
		case m.read && m.template == nil && ct.missing == "":
			ct.missing = fmt.Sprintf("%s has %s", m, m.noTemplate)
		}
	}
	if ct.render == nil {
		tpl, err := dataset.NewChatTemplate(plainChatTemplate, "", "")
		if err != nil {
			return ct, err
		}
		ct.render = tpl
	}
	return ct, nil
}

// checkDataset loads a mutation dataset as a fine-tune will; a chat dataset
// for a population with a model without a chat template is refused.
func (ct chatTemplates) checkDataset(path string) error {
	examples, err := dataset.Load(path, dataset.Options{Template: ct.render})
	if err != nil {
		return err
	}
	if ct.missing == "" {
		return nil
	}
	for i, e := range examples {
		if e.Segments != nil {
			return fmt.Errorf("%s is a chat dataset (record %d has messages), but %s; set mutation.chat_template", path, i+1, ct.missing)
		}
	}
	return nil
}

const plainChatTemplate = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
