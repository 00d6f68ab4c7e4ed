// Package train fine-tunes llama models on the ggml engine: full fine-tuning and LoRA with AdamW, warm-up and
// decay, gradient clipping and accumulation, loss on completion tokens only, and checkpoints that resume to
// bit-identical weights. It also pre-trains the project's tiny models from nothing.
package train

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/evomerge/evomerge/internal/llm"
)

// Example is one training example: a prompt and the completion the model should learn (loss on the
// completion only), a plain text (loss on every token), or segments (a chat rendered with its template:
// loss on the learned segments only).
type Example struct {
	Prompt     string `json:"prompt,omitempty"`
	Completion string `json:"completion,omitempty"`
	Text       string `json:"text,omitempty"`
	// Segments, when set, is the whole example as consecutive pieces, each learned or only read. It is
	// tokenized piece by piece and no BOS or EOS is added: a chat template writes its own.
	Segments []Segment `json:"segments,omitempty"`
}

// Segment is a piece of an example and whether its tokens are learned.
type Segment struct {
	Text  string `json:"text"`
	Learn bool   `json:"learn,omitempty"`
}

// maxLine bounds one JSONL line.
const maxLine = 16 << 20

// ReadJSONL reads examples, one JSON object per line: {"prompt":…, "completion":…} or {"text":…}.
// name is used in errors ("data.jsonl:12: …").
func ReadJSONL(r io.Reader, name string) ([]Example, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var out []Example
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(text), &raw); err != nil {
			return nil, fmt.Errorf("%s:%d: not a JSON object: %v", name, line, err)
		}
		var e Example
		for k, v := range raw {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%s:%d: field %q must be a string", name, line, k)
			}
			switch k {
			case "prompt":
				e.Prompt = s
			case "completion":
				e.Completion = s
			case "text":
				e.Text = s
			}
		}
		switch {
		case e.Text != "" && (e.Prompt != "" || e.Completion != ""):
			return nil, fmt.Errorf("%s:%d: an example has either text or prompt+completion, not both", name, line)
		case e.Text == "" && e.Completion == "":
			return nil, fmt.Errorf("%s:%d: no \"completion\" or \"text\" to learn", name, line)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, maxLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: the dataset is empty", name)
	}
	return out, nil
}

// sequence is one tokenized training row: inputs, targets, and which targets count in the loss.
type sequence struct {
	input, target []int32
	learn         []bool
}

// tokenize turns examples into sequences of at most window tokens. A prompt+completion example that does not
// fit is rejected (cutting it would train on a broken answer); a text longer than the window is split into
// consecutive windows.
func tokenize(tok llm.Tokenizer, examples []Example, window int) ([]sequence, error) {
	var out []sequence
	for i, e := range examples {
		if len(e.Segments) > 0 {
			s, err := tokenizeSegments(tok, e.Segments, window)
			if err != nil {
				return nil, fmt.Errorf("example %d: %w", i+1, err)
			}
			out = append(out, s)
			continue
		}
		var ids []int32
		if bos := tok.BOS(); bos >= 0 && tok.AddBOS() {
			// As a prompt is scored: a vocabulary that adds no BOS (Qwen) trains without one.
			ids = append(ids, bos)
		}
		if e.Text != "" {
			t, err := tok.Encode(e.Text)
			if err != nil {
				return nil, fmt.Errorf("example %d: %w", i+1, err)
			}
			ids = append(ids, t...)
			if eos := tok.EOS(); eos >= 0 {
				ids = append(ids, eos)
			}
			for start := 0; start+1 < len(ids); start += window {
				end := min(start+window+1, len(ids))
				s := sequence{input: ids[start : end-1], target: ids[start+1 : end]}
				s.learn = make([]bool, len(s.target))
				for j := range s.learn {
					s.learn[j] = true
				}
				out = append(out, s)
			}
			continue
		}
		p, err := tok.Encode(e.Prompt)
		if err != nil {
			return nil, fmt.Errorf("example %d: %w", i+1, err)
		}
		c, err := tok.Encode(e.Completion)
		if err != nil {
			return nil, fmt.Errorf("example %d: %w", i+1, err)
		}
		ids = append(ids, p...)
		firstLearned := len(ids) // index in ids of the first completion token
		ids = append(ids, c...)
		if eos := tok.EOS(); eos >= 0 {
			ids = append(ids, eos)
		}
		if len(ids)-1 > window {
			return nil, fmt.Errorf("example %d has %d tokens, more than the context of %d: examples are not truncated, shorten it", i+1, len(ids)-1, window)
		}
		s := sequence{input: ids[:len(ids)-1], target: ids[1:]}
		s.learn = make([]bool, len(s.target))
		for j := range s.learn {
			s.learn[j] = j+1 >= firstLearned
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("train: the dataset is empty")
	}
	return out, nil
}

// tokenizeSegments tokenizes each segment and learns the tokens of the learned ones. Like a
// prompt+completion example, it must fit the window whole.
func tokenizeSegments(tok llm.Tokenizer, segs []Segment, window int) (sequence, error) {
	var ids []int32
	var learned []bool // per token of ids
	for _, sg := range segs {
		t, err := tok.Encode(sg.Text)
		if err != nil {
			return sequence{}, err
		}
		ids = append(ids, t...)
		for range t {
			learned = append(learned, sg.Learn)
		}
	}
	if len(ids) < 2 {
		return sequence{}, errors.New("fewer than 2 tokens")
	}
	if len(ids)-1 > window {
		return sequence{}, fmt.Errorf("%d tokens, more than the context of %d: examples are not truncated, shorten it", len(ids)-1, window)
	}
	s := sequence{input: ids[:len(ids)-1], target: ids[1:], learn: learned[1:]}
	some := false
	for _, l := range s.learn {
		some = some || l
	}
	if !some {
		return sequence{}, errors.New("no learned token")
	}
	return s, nil
}
