package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/evomerge/evomerge/internal/jsonpos"
	"github.com/evomerge/evomerge/workflows"
)

// maxConfigBytes bounds what a config file may make us read.
const maxConfigBytes = 4 << 20

// loadRunConfig reads a run config from a JSON or YAML file (JSON is YAML,
// so one parser serves both and gives line numbers), fills defaults and
// validates it. Every error names the file, the line where it is known, and
// the field.
func loadRunConfig(path string) (workflows.RunConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return workflows.RunConfig{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return workflows.RunConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return workflows.RunConfig{}, fmt.Errorf("%s: config is larger than the %d bytes allowed", path, maxConfigBytes)
	}
	return parseRunConfig(filepath.Base(path), data)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

func parseRunConfig(name string, data []byte) (workflows.RunConfig, error) {
	// A JSON config (the input `temporal workflow start` takes) is named by
	// line and column: encoding/json's offsets for its syntax, the parsed
	// document's key positions for its fields.
	isJSON := bytes.HasPrefix(bytes.TrimSpace(data), []byte("{"))
	if isJSON {
		if line, col, err := jsonpos.SyntaxError(data); err != nil {
			return workflows.RunConfig{}, fmt.Errorf("%s:%d:%d: %v", name, line, col, err)
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			return workflows.RunConfig{}, fmt.Errorf("%s:%s: %s", name, m[1], msg[len(m[0]):])
		}
		return workflows.RunConfig{}, fmt.Errorf("%s: %s", name, msg)
	}
	if root.Kind == 0 {
		return workflows.RunConfig{}, fmt.Errorf("%s: empty config", name)
	}
	var v any
	if err := root.Decode(&v); err != nil {
		return workflows.RunConfig{}, fmt.Errorf("%s: %v", name, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return workflows.RunConfig{}, fmt.Errorf("%s:%d: a run config must be a mapping of fields, got %s", name, root.Content[0].Line, root.Content[0].Tag)
	}
	js, err := json.Marshal(v)
	if err != nil {
		return workflows.RunConfig{}, fmt.Errorf("%s: %v", name, err)
	}
	cfg, err := workflows.ParseRunConfig(js)
	if err == nil {
		return cfg, nil
	}
	return workflows.RunConfig{}, locateConfigErrorAt(name, &root, err, isJSON)
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)

// locateConfigError adds "file:line:" to each field problem.
func locateConfigError(name string, root *yaml.Node, err error) error {
	return locateConfigErrorAt(name, root, err, false)
}

// locateConfigErrorAt is locateConfigError, with the column too
// ("file:line:col:") when withColumn (a JSON file).
func locateConfigErrorAt(name string, root *yaml.Node, err error, withColumn bool) error {
	at := func(line, col int) string {
		if withColumn {
			return fmt.Sprintf("%s:%d:%d: ", name, line, col)
		}
		return fmt.Sprintf("%s:%d: ", name, line)
	}
	var ce *workflows.ConfigError
	if errors.As(err, &ce) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: invalid run config", name)
		for _, f := range ce.Fields {
			b.WriteString("\n  ")
			if line, col := fieldPos(root, f.Field); line > 0 {
				b.WriteString(at(line, col))
			}
			b.WriteString(f.Error())
		}
		return errors.New(b.String())
	}
	msg := strings.TrimPrefix(err.Error(), "run config: ")
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		if line, col := fieldPos(root, te.Field); line > 0 {
			return fmt.Errorf("%s%s: got a %s value, want %s", at(line, col), te.Field, te.Value, te.Type)
		}
	}
	if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
		if line, col := keyPos(root, m[1]); line > 0 {
			return fmt.Errorf("%s%s (not a run config field; check the spelling)", at(line, col), msg)
		}
	}
	return fmt.Errorf("%s: %s", name, msg)
}

// fieldLine finds the line of a dotted field path ("crossover.methods[1].name")
// in the parsed document; for a field that is absent (defaulted) it returns
// the line of its closest present parent, or 0.
func fieldLine(root *yaml.Node, field string) int {
	line, _ := fieldPos(root, field)
	return line
}

// fieldPos is fieldLine with the column.
func fieldPos(root *yaml.Node, field string) (line, col int) {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, part := range splitField(field) {
		switch {
		case part.index >= 0:
			if n.Kind != yaml.SequenceNode || part.index >= len(n.Content) {
				return line, col
			}
			n = n.Content[part.index]
			line, col = n.Line, n.Column
		default:
			if n.Kind != yaml.MappingNode {
				return line, col
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i]; k.Value == part.key {
					line, col, n, found = k.Line, k.Column, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line, col
			}
		}
	}
	return line, col
}

type fieldPart struct {
	key   string
	index int // -1 for a key
}

func splitField(field string) []fieldPart {
	var parts []fieldPart
	for _, seg := range strings.Split(field, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			parts = append(parts, fieldPart{key: name, index: -1})
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			if !ok {
				break
			}
			if i, err := strconv.Atoi(idx); err == nil {
				parts = append(parts, fieldPart{index: i})
			}
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return parts
}

// keyLine finds the first mapping key with this name anywhere in the document.
func keyLine(n *yaml.Node, key string) int {
	line, _ := keyPos(n, key)
	return line
}

// keyPos is keyLine with the column.
func keyPos(n *yaml.Node, key string) (line, col int) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value == key {
				return k.Line, k.Column
			}
		}
	}
	for _, c := range n.Content {
		if l, c := keyPos(c, key); l > 0 {
			return l, c
		}
	}
	return 0, 0
}
