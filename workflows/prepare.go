package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Prepare is the one way a run config becomes usable: every zero field filled
// with its default, then every field checked. Every entry point calls it (the
// starter's start, quickstart and schedule, and the Evolution workflow itself,
// whose input may come straight from `temporal workflow start`). It is
// idempotent: a prepared config prepares to itself. The error is a
// *ConfigError naming every field at fault.
func Prepare(c RunConfig) (RunConfig, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return RunConfig{}, err
	}
	return c, nil
}

// ParseRunConfig decodes a JSON run config strictly (unknown fields are
// errors, so a typo never silently becomes a default) and prepares it.
func ParseRunConfig(data []byte) (RunConfig, error) {
	var c RunConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return RunConfig{}, fmt.Errorf("run config: %w", err)
	}
	if dec.More() {
		return RunConfig{}, errors.New("run config: unexpected data after the JSON object")
	}
	return Prepare(c)
}
