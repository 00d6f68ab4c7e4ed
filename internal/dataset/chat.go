package dataset

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/nikolalohinski/gonja/v2"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"

	"github.com/evomerge/evomerge/internal/train"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatTemplate renders conversations the way the model was trained to see
// them: its own Jinja template (tokenizer.chat_template) through gonja,
// with the settings transformers' apply_chat_template uses (trim_blocks,
// lstrip_blocks, raise_exception, no file access).
type ChatTemplate struct {
	// Source is the template text.
	Source string
	// BOS and EOS are the texts of the model's bos and eos tokens, given to
	// the template as bos_token and eos_token.
	BOS, EOS string

	tpl *exec.Template
}

// NewChatTemplate parses a template. bos and eos are the token texts.
func NewChatTemplate(source, bos, eos string) (*ChatTemplate, error) {
	if strings.TrimSpace(source) == "" {
		return nil, fmt.Errorf("chat template is empty")
	}
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	// Templates may not include or import other files: a model's metadata
	// must not read the worker's disk.
	root, err := loaders.NewShiftedLoader("chat_template", strings.NewReader(source), noFiles{})
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	tpl, err := exec.NewTemplate("chat_template", cfg, root, gonja.DefaultEnvironment)
	if err != nil {
		return nil, fmt.Errorf("chat template does not parse: %w", err)
	}
	return &ChatTemplate{Source: source, BOS: bos, EOS: eos, tpl: tpl}, nil
}

type noFiles struct{}

func (noFiles) Read(path string) (io.Reader, error) {
	return nil, fmt.Errorf("chat template may not read %q", path)
}
func (noFiles) Resolve(path string) (string, error) {
	return "", fmt.Errorf("chat template may not read %q", path)
}
func (noFiles) Inherit(string) (loaders.Loader, error) { return noFiles{}, nil }

// errRaised carries a template's raise_exception message.
type errRaised struct{ msg string }

func (e errRaised) Error() string { return "chat template raised: " + e.msg }

// Render renders messages; with generationPrompt the template appends the
// header of the assistant's next turn (add_generation_prompt).
func (c *ChatTemplate) Render(messages []Message, generationPrompt bool) (out string, err error) {
	// gonja can panic on templates that use what it lacks; the user's model
	// must get an error, not crash the worker.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("chat template failed: %v", p)
		}
	}()
	msgs := make([]map[string]any, len(messages))
	for i, m := range messages {
		msgs[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	var raised *errRaised
	ctx := exec.NewContext(map[string]any{
		"messages":              msgs,
		"add_generation_prompt": generationPrompt,
		"bos_token":             c.BOS,
		"eos_token":             c.EOS,
		"raise_exception": func(msg string) (string, error) {
			raised = &errRaised{msg}
			return "", *raised
		},
	})
	var b bytes.Buffer
	if err := c.tpl.Execute(&b, ctx); err != nil {
		if raised != nil {
			return "", *raised
		}
		return "", fmt.Errorf("chat template failed: %w", err)
	}
	return b.String(), nil
}

// Segments renders a conversation and cuts it into the pieces the model
// learns (each assistant turn, with the end-of-turn markers the template
// writes after it) and the pieces it only reads (everything else).
//
// An assistant turn's span is found by rendering prefixes: the
// conversation before the turn, with the generation prompt, must be a
// prefix of the whole; the turn runs from there to where the render of the
// conversation up to and including the turn departs from the whole. A
// template for which this does not hold (one that rewrites earlier turns,
// as Mistral Nemo's moves the system prompt into the last user turn) is
// refused.
func (c *ChatTemplate) Segments(messages []Message) ([]train.Segment, error) {
	whole, err := c.Render(messages, false)
	if err != nil {
		return nil, err
	}
	var segs []train.Segment
	at := 0
	for k, m := range messages {
		if m.Role != "assistant" {
			continue
		}
		before, err := c.Render(messages[:k], true)
		if err != nil {
			return nil, fmt.Errorf("rendering turns 1..%d: %w", k, err)
		}
		upTo, err := c.Render(messages[:k+1], false)
		if err != nil {
			return nil, fmt.Errorf("rendering turns 1..%d: %w", k+1, err)
		}
		// The turn ends where the render that stops after it departs from
		// the whole: templates that close the last turn differently (an
		// eos after the final message, as Phi-3.5's) still work.
		end := commonPrefix(upTo, whole)
		if !strings.HasPrefix(whole, before) || len(before) < at {
			return nil, fmt.Errorf("message %d (assistant): the template renders the conversation before this turn differently from the whole (it rewrites earlier turns), so the assistant turns cannot be located", k+1)
		}
		if end <= len(before) {
			return nil, fmt.Errorf("message %d (assistant): the template renders no text for it", k+1)
		}
		if len(before) > at {
			segs = append(segs, train.Segment{Text: whole[at:len(before)]})
		}
		segs = append(segs, train.Segment{Text: whole[len(before):end], Learn: true})
		at = end
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("no assistant message to learn")
	}
	if at < len(whole) {
		segs = append(segs, train.Segment{Text: whole[at:]})
	}
	return segs, nil
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
