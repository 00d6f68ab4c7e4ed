package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/internal/dataset"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// popModel is what the start-time check read of one population model.
type popModel struct {
	field, src string
	// read is false for a model the starter cannot read (a store reference, a path that is not on
	// this machine): the worker checks it when it imports it.
	read bool
	// template is the model's chat template; nil when it has none (noTemplate says where it looked).
	template   *dataset.ChatTemplate
	noTemplate string
}

func (m popModel) String() string { return m.field + " " + m.src }

// checkModels reads every model of init.models and init.base as the worker will import it, before
// anything starts: a Hugging Face folder (a local directory, file:// or an s3:// prefix ending in "/")
// by its config.json, safetensors headers and tokenizer files, without a weight being read; a GGUF
// file (local, file:// or s3://) by its header. An architecture the engine lacks, tensors that do not
// match config.json, or a chat template that does not parse is refused, naming the field and the model.
func checkModels(ctx context.Context, cfg workflows.RunConfig) ([]popModel, error) {
	type entry struct{ field, src string }
	var entries []entry
	for i, m := range cfg.Init.Models {
		entries = append(entries, entry{fmt.Sprintf("init.models[%d]", i), m})
	}
	if cfg.Init.Base != "" {
		entries = append(entries, entry{"init.base", cfg.Init.Base})
	}
	var out []popModel
	var problems []string
	for _, e := range entries {
		m, err := readModel(ctx, e.field, e.src)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: %v", e.field, e.src, err))
			continue
		}
		out = append(out, m)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("population refused (nothing was started):\n  %s", strings.Join(problems, "\n  "))
	}
	return out, nil
}

func readModel(ctx context.Context, field, src string) (popModel, error) {
	m := popModel{field: field, src: src}
	switch {
	case strings.HasPrefix(src, "sha256:"):
		return m, nil
	case strings.HasPrefix(src, "s3://"):
		u, err := url.Parse(src)
		if err != nil {
			return m, fmt.Errorf("bad URL: %v", err)
		}
		if strings.HasSuffix(u.Path, "/") {
			return m, readS3Folder(ctx, &m)
		}
		rc, err := store.OpenURL(ctx, src)
		if err != nil {
			return m, err
		}
		defer rc.Close()
		g, err := gguf.Read(&streamReaderAt{r: rc, limit: maxGGUFHeader}, 1<<62)
		if err != nil {
			return m, err
		}
		return m, m.fromGGUF(g)
	}
	path := strings.TrimPrefix(src, "file://")
	fi, err := os.Stat(path)
	if err != nil {
		return m, nil // not on this machine: the worker reads it
	}
	if fi.IsDir() {
		info, err := hf.CheckFolder(path)
		if err != nil {
			return m, err
		}
		return m, m.fromHF(info, filepath.Join(path, hf.TokenizerConfigName))
	}
	g, f, err := gguf.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	return m, m.fromGGUF(g)
}

// readS3Folder checks an HF folder under an s3:// prefix from a copy of its small files and of its
// safetensors headers (the weights are not transferred).
func readS3Folder(ctx context.Context, m *popModel) error {
	tmp, err := os.MkdirTemp("", "evomerge-hfcheck-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	name := strings.TrimSuffix(strings.SplitN(m.src, "?", 2)[0], "/")
	local := func(err error) error { return errors.New(strings.ReplaceAll(err.Error(), tmp, name)) }
	if err := hf.Fetch(activities.URLOpener(ctx, m.src), tmp, true); err != nil {
		return local(err)
	}
	info, err := hf.CheckFolder(tmp)
	if err != nil {
		return local(err)
	}
	return m.fromHF(info, name+"/"+hf.TokenizerConfigName)
}

func (m *popModel) fromHF(info *hf.Info, where string) error {
	m.read = true
	if info.ChatTemplate == "" {
		m.noTemplate = fmt.Sprintf("no chat template (no chat_template in %s, no %s)", where, hf.ChatTemplateName)
		return nil
	}
	t, err := dataset.NewChatTemplate(info.ChatTemplate, info.BOS, info.EOS)
	if err != nil {
		return fmt.Errorf("%s: chat_template: %w", where, err)
	}
	m.template = t
	return nil
}

func (m *popModel) fromGGUF(g *gguf.File) error {
	m.read = true
	arch, _ := g.String("general.architecture")
	if !hf.RunsGGUFArchitecture(arch) {
		return fmt.Errorf("general.architecture = %q: the engine runs %s only", arch, strings.Join(hf.GGUFArchitectures(), ", "))
	}
	t, err := dataset.TemplateFromGGUF(g, "")
	switch {
	case errors.Is(err, dataset.ErrNoChatTemplate):
		m.noTemplate = "no chat template (tokenizer.chat_template)"
	case err != nil:
		return fmt.Errorf("tokenizer.chat_template: %w", err)
	default:
		m.template = t
	}
	return nil
}

// maxGGUFHeader bounds the GGUF header read from S3 (vocabularies of 150k tokens take about 10 MB).
const maxGGUFHeader = 256 << 20

// streamReaderAt serves the first bytes of a stream to gguf.Read, which reads its header in order:
// what was read is kept, up to limit bytes.
type streamReaderAt struct {
	r     io.Reader
	buf   []byte
	limit int
	err   error
}

func (s *streamReaderAt) ReadAt(p []byte, off int64) (int, error) {
	need := off + int64(len(p))
	for int64(len(s.buf)) < need && s.err == nil {
		if len(s.buf) >= s.limit {
			s.err = fmt.Errorf("GGUF header is larger than %d bytes", s.limit)
			break
		}
		chunk := min(1<<20, s.limit-len(s.buf))
		start := len(s.buf)
		s.buf = append(s.buf, make([]byte, chunk)...)
		n, err := io.ReadFull(s.r, s.buf[start:])
		s.buf = s.buf[:start+n]
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		s.err = err
	}
	if off >= int64(len(s.buf)) {
		if s.err == nil {
			return 0, io.EOF
		}
		return 0, s.err
	}
	n := copy(p, s.buf[off:])
	if n < len(p) {
		return n, s.err
	}
	return n, nil
}
