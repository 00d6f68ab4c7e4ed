package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/internal/atomicfile"
	"github.com/evomerge/evomerge/internal/eval"
	"github.com/evomerge/evomerge/internal/eval/engine"
	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// cmdEval scores one model (a GGUF file or a Hugging Face folder, local or
// under s3://) on a suite file (the task schema of
// fitness.dev) on this machine, without Temporal, and prints an lm-eval-style
// table, so a user can check our numbers against the tools they know.
func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	model := fs.String("m", "", "model: a GGUF file, a Hugging Face folder (config.json, *.safetensors, tokenizer files), or s3:// URL of either (a folder as a prefix ending in /)")
	file := fs.String("f", "", "suite file (YAML or JSON): a list of tasks, or {tasks: [...]}, as fitness.dev")
	threads := fs.Int("threads", 1, "compute threads (ggml busy-waits: at most the free cores)")
	seed := fs.Uint64("seed", 0, "seed of subsamples and few-shot draws for tasks without their own")
	device := fs.String("device", "cpu", "compute device: cpu or cuda")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *model == "" || *file == "" || len(pos) > 0 {
		return fmt.Errorf("%w: eval needs -m model.gguf|hf-folder -f suite.yaml", errUsage)
	}
	tasks, err := loadSuiteFile(*file)
	if err != nil {
		return err
	}
	suite, cleanup, err := localSuite(ctx, *file, tasks, *seed)
	defer cleanup()
	if err != nil {
		return err
	}
	path, label, done, err := evalModelFile(ctx, *model, stderr)
	defer done()
	if err != nil {
		return fmt.Errorf("-m %s: %w", *model, err)
	}
	m, err := llm.Load(path, llm.Options{Device: *device, Threads: *threads})
	if err != nil {
		return fmt.Errorf("-m %s: %w", *model, err)
	}
	defer m.Close()
	rep, err := eval.Evaluate(ctx, engine.FromModel(m), suite, eval.Options{
		Progress: func(done, total int, r eval.TaskResult) {
			fmt.Fprintf(stderr, "[%d/%d] %s %s=%.4f\n", done, total, r.Name, r.Metric, r.Score)
		},
	})
	if err != nil {
		return err
	}
	printEvalTable(stdout, label, rep)
	return nil
}

// evalModelFile is the GGUF file to score for -m: the file itself, or a
// Hugging Face folder (local, or an s3:// prefix, fetched first) converted with
// hf.Import into a temporary directory that done removes. label names the
// model in the table.
func evalModelFile(ctx context.Context, src string, stderr io.Writer) (path, label string, done func(), err error) {
	done = func() {}
	tmp := func() (string, error) {
		d, err := os.MkdirTemp("", "evomerge-eval-")
		if err == nil {
			done = func() { os.RemoveAll(d) }
		}
		return d, err
	}
	if strings.HasPrefix(src, "s3://") {
		u, err := url.Parse(src)
		if err != nil {
			return "", "", done, err
		}
		name := strings.TrimSuffix(u.Path, "/")
		name = name[strings.LastIndex(name, "/")+1:]
		dir, err := tmp()
		if err != nil {
			return "", "", done, err
		}
		if !strings.HasSuffix(u.Path, "/") {
			// A GGUF file.
			rc, err := store.OpenURL(ctx, src)
			if err != nil {
				return "", "", done, err
			}
			defer rc.Close()
			path = filepath.Join(dir, name)
			if _, err := atomicfile.Write(path, func(w io.Writer) error { _, err := io.Copy(w, rc); return err }); err != nil {
				return "", "", done, err
			}
			return path, name, done, nil
		}
		folder := filepath.Join(dir, "hf")
		if err := os.Mkdir(folder, 0o755); err != nil {
			return "", "", done, err
		}
		if err := hf.Fetch(activities.URLOpener(ctx, src), folder, false); err != nil {
			return "", "", done, err
		}
		path = filepath.Join(dir, name+".gguf")
		if _, _, err := hf.ImportFileAs(folder, name, path); err != nil {
			return "", "", done, errors.New(strings.ReplaceAll(err.Error(), folder, strings.TrimSuffix(strings.SplitN(src, "?", 2)[0], "/")))
		}
		fmt.Fprintf(stderr, "converted %s to GGUF\n", src)
		return path, name, done, nil
	}
	local := strings.TrimPrefix(src, "file://")
	fi, err := os.Stat(local)
	if err != nil {
		return "", "", done, err
	}
	if !fi.IsDir() {
		return local, filepath.Base(local), done, nil
	}
	dir, err := tmp()
	if err != nil {
		return "", "", done, err
	}
	label = filepath.Base(filepath.Clean(local))
	path = filepath.Join(dir, label+".gguf")
	if _, _, err := hf.ImportFile(local, path); err != nil {
		return "", "", done, err
	}
	fmt.Fprintf(stderr, "converted %s to GGUF\n", local)
	return path, label, done, nil
}

// loadSuiteFile reads a suite file strictly, every problem named with its
// file, line and field.
func loadSuiteFile(path string) ([]workflows.TaskSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("%s: larger than the %d bytes allowed", path, maxConfigBytes)
	}
	name := filepath.Base(path)
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("%s:%s: %s", name, m[1], msg[len(m[0]):])
		}
		return nil, fmt.Errorf("%s: %s", name, msg)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty suite", name)
	}
	doc := root.Content[0]
	prefix := "tasks"
	if doc.Kind == yaml.SequenceNode {
		// A bare list: wrap it so field paths read tasks[i].x either way.
		doc = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "tasks"}, doc}}
		root.Content[0] = doc
	}
	var v any
	if err := doc.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	var s struct {
		Tasks []workflows.TaskSpec `json:"tasks"`
	}
	if err := decodeStrictJSON(js, &s); err != nil {
		msg := err.Error()
		if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
			if line := keyLine(&root, m[1]); line > 0 {
				return nil, fmt.Errorf("%s:%d: %s (not a task field; check the spelling)", name, line, msg)
			}
		}
		return nil, fmt.Errorf("%s: %s", name, msg)
	}
	if errs := workflows.ValidateTasks(prefix, s.Tasks); len(errs) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: invalid suite", name)
		for _, f := range errs {
			b.WriteString("\n  ")
			if line := fieldLine(&root, f.Field); line > 0 {
				fmt.Fprintf(&b, "%s:%d: ", name, line)
			}
			b.WriteString(f.Error())
		}
		return nil, errors.New(b.String())
	}
	return workflows.TasksWithDefaults(s.Tasks), nil
}

func decodeStrictJSON(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// localSuite is the engine's suite of the tasks with every data file on this
// disk (an s3:// one is downloaded to a temporary file; store: references
// need a store, which eval runs without) and checked by its loader.
func localSuite(ctx context.Context, file string, tasks []workflows.TaskSpec, seed uint64) (eval.Suite, func(), error) {
	dir, err := os.MkdirTemp("", "evomerge-eval-")
	if err != nil {
		return eval.Suite{}, func() {}, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	suite := eval.Suite{Name: filepath.Base(file)}
	for i, t := range tasks {
		for _, f := range []struct {
			name string
			ref  *string
		}{{"path", &t.Path}, {"fewshot_path", &t.FewshotPath}} {
			if *f.ref == "" {
				continue
			}
			field := fmt.Sprintf("tasks[%d].%s", i, f.name)
			local, err := localFile(ctx, dir, field, *f.ref)
			if err != nil {
				return suite, cleanup, fmt.Errorf("%s: %w", file, err)
			}
			if err := checkTaskFile(t, local); err != nil {
				return suite, cleanup, fmt.Errorf("%s: %s: %s", file, field, strings.ReplaceAll(err.Error(), local, *f.ref))
			}
			*f.ref = local
		}
		suite.Tasks = append(suite.Tasks, activities.EvalTask(t, seed))
	}
	if err := suite.Validate(); err != nil {
		return suite, cleanup, fmt.Errorf("%s: %w", file, err)
	}
	return suite, cleanup, nil
}

func localFile(ctx context.Context, dir, field, ref string) (string, error) {
	switch {
	case workflows.IsStoreRef(ref):
		return "", fmt.Errorf("%s: %s: starter eval reads local files and s3:// objects, not store references", field, ref)
	case strings.HasPrefix(ref, "s3://"):
		rc, err := store.OpenURL(ctx, ref)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		defer rc.Close()
		f, err := os.CreateTemp(dir, "data-")
		if err != nil {
			return "", err
		}
		_, err = io.Copy(f, rc)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("%s: download %s: %w", field, ref, err)
		}
		return f.Name(), nil
	}
	p := strings.TrimPrefix(ref, "file://")
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %v", field, p, errors.Unwrap(err))
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%s: %s is a directory, not a data file", field, p)
	}
	return p, nil
}

// printEvalTable prints one row per task and metric, the primary metric
// first, as lm-eval's results table, and the weighted mean.
func printEvalTable(w io.Writer, model string, rep eval.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(w, "model: %s\n", model)
	fmt.Fprintln(tw, "task\tmetric\tvalue\tstderr\tn\t")
	for _, t := range rep.Tasks {
		fmt.Fprintf(tw, "%s\t%s\t%.4f\t%.4f\t%d\t\n", t.Name, t.Metric, t.Score, t.StdErr, t.N)
		var others []string
		for m := range t.Metrics {
			if m != t.Metric {
				others = append(others, m)
			}
		}
		sort.Strings(others)
		for _, m := range others {
			fmt.Fprintf(tw, "\t%s\t%.4f\t\t\t\n", m, t.Metrics[m])
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "fitness (weighted mean of the primary metrics): %.4f\n", rep.Fitness)
}
