package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/evomerge/evomerge/internal/eval/task"
	"github.com/evomerge/evomerge/internal/tabular"
)

// GenericVersion is the version of the generic schema's formatting.
const GenericVersion = "jsonl-1"

// LoadGeneric reads custom items in the generic schema (JSONL, gzipped JSONL
// or Parquet), one JSON object per line or row with the field names of
// task.Item (query, choices, gold, labels, contexts, suffix, answer, text,
// description, group, id). Unknown fields
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
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	return ReadGeneric(f, st.Size(), path, kind)
}

// ReadGeneric is LoadGeneric over a random-access reader of size bytes;
// name is used in errors and item IDs.
func ReadGeneric(r io.ReaderAt, size int64, name string, kind task.Kind) ([]task.Item, error) {
	if _, err := task.ParseKind(string(kind)); err != nil {
		return nil, err
	}
	var items []task.Item
	err := tabular.Each(r, size, name, tabular.Options{}, func(rec tabular.Record) error {
		if len(items) >= MaxItems {
			return fmt.Errorf("more than %d items", MaxItems)
		}
		line := rec.JSON
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
			it.ID = rec.Loc
		} else {
			it.ID = fmt.Sprintf("%s (%s)", rec.Loc, it.ID)
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
		return nil, fmt.Errorf("jsonl: %s: no items", name)
	}
	return items, nil
}
