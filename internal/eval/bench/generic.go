package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/evomerge/evomerge/internal/eval/task"
)

// GenericVersion is the version of the generic schema's formatting.
const GenericVersion = "jsonl-1"

// LoadGeneric reads custom items in the generic schema, one JSON object per
// line with the field names of task.Item (query, choices, gold, labels,
// contexts, suffix, answer, text, description, group, id). Unknown fields
// are errors so a typo is not read as a missing field, and gold must be
// present for the kinds that use it.
func LoadGeneric(path string, kind task.Kind) ([]task.Item, error) {
	if _, err := task.ParseKind(string(kind)); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	defer f.Close()
	var items []task.Item
	err = readLines(f, path, func(line []byte, n int) error {
		var it task.Item
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&it); err != nil {
			return fmt.Errorf("malformed JSON: %w", err)
		}
		if dec.More() {
			return fmt.Errorf("malformed JSON: more than one value on the line")
		}
		if kind == task.MultipleChoice || kind == task.Partial {
			var probe struct {
				Gold *json.RawMessage `json:"gold"`
			}
			_ = json.Unmarshal(line, &probe)
			if probe.Gold == nil {
				return fmt.Errorf("field gold: missing (no correct answer)")
			}
		}
		if it.ID == "" {
			it.ID = fmt.Sprintf("%s:%d", path, n)
		} else {
			it.ID = fmt.Sprintf("%s:%d (%s)", path, n, it.ID)
		}
		if err := it.Check(kind); err != nil {
			return err
		}
		items = append(items, it)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("jsonl: %s: no items", path)
	}
	return items, nil
}
