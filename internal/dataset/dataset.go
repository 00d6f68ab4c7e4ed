// Package dataset reads mutation (fine-tuning) datasets — JSONL, gzipped
// JSONL or Parquet of {prompt, completion}, {text} or chat {messages:
// [{role, content}]} records — into train.Example values, rendering chat
// records with the model's own chat template so only assistant turns are
// learned, and draws seeded subsets and mixtures of several datasets.
package dataset

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/evomerge/evomerge/internal/tabular"
	"github.com/evomerge/evomerge/internal/train"
)

// MaxExamples bounds one dataset.
const MaxExamples = 10_000_000

// Options for Load.
type Options struct {
	// Template renders chat records; nil refuses a chat dataset.
	Template *ChatTemplate
}

// Load reads the dataset at path. The first bad record stops the load,
// naming the file and its line (JSONL) or row (Parquet) and the field.
func Load(path string, o Options) ([]train.Example, error) {
	var out []train.Example
	err := tabular.EachFile(path, tabular.Options{}, func(rec tabular.Record) error {
		if len(out) >= MaxExamples {
			return fmt.Errorf("more than %d examples", MaxExamples)
		}
		e, err := parse(rec.JSON, o)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dataset: %s: no usable examples", path)
	}
	return out, nil
}

func parse(line []byte, o Options) (train.Example, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return train.Example{}, fmt.Errorf("not a JSON object: %v", err)
	}
	str := func(k string) (string, bool, error) {
		v, ok := raw[k]
		if !ok || string(v) == "null" {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, fmt.Errorf("field %s: must be a string", k)
		}
		return s, true, nil
	}
	if m, ok := raw["messages"]; ok && string(m) != "null" {
		var msgs []Message
		if err := json.Unmarshal(m, &msgs); err != nil {
			return train.Example{}, fmt.Errorf("field messages: want a list of {role, content}: %v", err)
		}
		if len(msgs) == 0 {
			return train.Example{}, fmt.Errorf("field messages: empty")
		}
		for i, msg := range msgs {
			if msg.Role == "" {
				return train.Example{}, fmt.Errorf("field messages[%d].role: missing or empty", i)
			}
		}
		if o.Template == nil {
			return train.Example{}, fmt.Errorf("field messages: a chat dataset needs a chat template, and the model has none (tokenizer.chat_template) and the config gives none")
		}
		segs, err := o.Template.Segments(msgs)
		if err != nil {
			return train.Example{}, fmt.Errorf("field messages: %w", err)
		}
		return train.Example{Segments: segs}, nil
	}
	text, hasText, err := str("text")
	if err != nil {
		return train.Example{}, err
	}
	prompt, hasPrompt, err := str("prompt")
	if err != nil {
		return train.Example{}, err
	}
	completion, hasCompletion, err := str("completion")
	if err != nil {
		return train.Example{}, err
	}
	switch {
	case hasText && (hasPrompt || hasCompletion):
		return train.Example{}, fmt.Errorf("fields text and prompt/completion: a record has one or the other")
	case hasText:
		if strings.TrimSpace(text) == "" {
			return train.Example{}, fmt.Errorf("field text: empty")
		}
		return train.Example{Text: text}, nil
	case hasCompletion:
		if completion == "" {
			return train.Example{}, fmt.Errorf("field completion: empty")
		}
		return train.Example{Prompt: prompt, Completion: completion}, nil
	case hasPrompt:
		return train.Example{}, fmt.Errorf("field completion: missing (the record has a prompt)")
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return train.Example{}, fmt.Errorf("no prompt+completion, text or messages field (the record has %s)", strings.Join(keys, ", "))
}
