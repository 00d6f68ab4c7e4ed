package workflows

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Fields renamed so that one thing has one name from the config file to the
// engine keep their old JSON names readable: recorded histories and running
// workflows carry them. Each type decodes strictly (an unknown field is an
// error, as in a run config file), accepts the old name, and writes only the
// new one.

// decodeStrict decodes b into v, rejecting unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// renamed fills *dst from old when dst is unset and old is set; both set is an error.
func renamed(newName, oldName string, dst *int, old *int) error {
	if old == nil {
		return nil
	}
	if *dst != 0 && *dst != *old {
		return fmt.Errorf("%s and its old name %s disagree (%d, %d)", newName, oldName, *dst, *old)
	}
	*dst = *old
	return nil
}

// decodeRenamed decodes b strictly into v, where the int field newName (newField,
// a pointer into v) may also be given under oldName.
func decodeRenamed(b []byte, v any, newField *int, newName, oldName string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	oldRaw, hasOld := fields[oldName]
	if hasOld {
		delete(fields, oldName)
		var err error
		if b, err = json.Marshal(fields); err != nil {
			return err
		}
	}
	if err := decodeStrict(b, v); err != nil {
		return err
	}
	if !hasOld {
		return nil
	}
	var old int
	if err := json.Unmarshal(oldRaw, &old); err != nil {
		return fmt.Errorf("%s: %w", oldName, err)
	}
	return renamed(newName, oldName, newField, &old)
}

func (m *TinyModel) UnmarshalJSON(b []byte) error {
	type plain TinyModel
	var v plain
	err := decodeRenamed(b, &v, &v.FFN, "ffn", "ff") // ffn was ff
	*m = TinyModel(v)
	return err
}

func (p *FineTuneParams) UnmarshalJSON(b []byte) error {
	type plain FineTuneParams
	var v plain
	err := decodeRenamed(b, &v, &v.BatchSize, "batch_size", "batch") // batch_size was batch
	*p = FineTuneParams(v)
	return err
}

func (m *Mutation) UnmarshalJSON(b []byte) error {
	type plain Mutation
	var v plain
	err := decodeRenamed(b, &v, &v.BatchSize, "batch_size", "batch") // batch_size was batch
	*m = Mutation(v)
	return err
}

func (t *TaskSpec) UnmarshalJSON(b []byte) error {
	type plain TaskSpec
	var v plain
	err := decodeRenamed(b, &v, &v.N, "n", "items") // n was items
	*t = TaskSpec(v)
	return err
}

func (s *TaskScore) UnmarshalJSON(b []byte) error {
	type plain TaskScore
	var v plain
	err := decodeRenamed(b, &v, &v.N, "n", "items") // n was items
	*s = TaskScore(v)
	return err
}

// A mutation dataset given as a plain string is a synthetic family (the
// form of mutation.datasets before data files).
func (d *MutationDataset) UnmarshalJSON(b []byte) error {
	if len(bytes.TrimSpace(b)) > 0 && bytes.TrimSpace(b)[0] == '"' {
		var fam string
		if err := json.Unmarshal(b, &fam); err != nil {
			return err
		}
		*d = MutationDataset{Family: fam}
		return nil
	}
	type plain MutationDataset
	var v plain
	if err := decodeStrict(b, &v); err != nil {
		return err
	}
	*d = MutationDataset(v)
	return nil
}
