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

func (m *TinyModel) UnmarshalJSON(b []byte) error {
	type plain TinyModel
	var v struct {
		plain
		FF *int `json:"ff"` // ffn before the rename
	}
	if err := decodeStrict(b, &v); err != nil {
		return err
	}
	if err := renamed("ffn", "ff", &v.plain.FFN, v.FF); err != nil {
		return err
	}
	*m = TinyModel(v.plain)
	return nil
}

func (p *FineTuneParams) UnmarshalJSON(b []byte) error {
	type plain FineTuneParams
	var v struct {
		plain
		Batch *int `json:"batch"` // batch_size before the rename
	}
	if err := decodeStrict(b, &v); err != nil {
		return err
	}
	if err := renamed("batch_size", "batch", &v.plain.BatchSize, v.Batch); err != nil {
		return err
	}
	*p = FineTuneParams(v.plain)
	return nil
}

func (m *Mutation) UnmarshalJSON(b []byte) error {
	type plain Mutation
	var v struct {
		plain
		Batch *int `json:"batch"` // batch_size before the rename
	}
	if err := decodeStrict(b, &v); err != nil {
		return err
	}
	if err := renamed("batch_size", "batch", &v.plain.BatchSize, v.Batch); err != nil {
		return err
	}
	*m = Mutation(v.plain)
	return nil
}

func (t *TaskSpec) UnmarshalJSON(b []byte) error {
	type plain TaskSpec
	var v struct {
		plain
		Items *int `json:"items"` // n before the rename
	}
	if err := decodeStrict(b, &v); err != nil {
		return err
	}
	if err := renamed("n", "items", &v.plain.N, v.Items); err != nil {
		return err
	}
	*t = TaskSpec(v.plain)
	return nil
}

func (s *TaskScore) UnmarshalJSON(b []byte) error {
	type plain TaskScore
	var v struct {
		plain
		Items *int `json:"items"` // n before the rename
	}
	if err := decodeStrict(b, &v); err != nil {
		return err
	}
	if err := renamed("n", "items", &v.plain.N, v.Items); err != nil {
		return err
	}
	*s = TaskScore(v.plain)
	return nil
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
