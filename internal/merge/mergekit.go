package merge

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Mergekit YAML: the configuration format users bring from mergekit.
//
//	models:            [{model: path, parameters: {weight: 0.5, density: [0.2, 0.8]}}]
//	merge_method:      ties
//	base_model:        path
//	parameters:        {normalize: true, t: [{filter: self_attn, value: [0, 1]}, {value: 0.5}]}
//	dtype:             bfloat16
//	slices:            [{sources: [{model: path, layer_range: [0, 16]}]}]
//
// A list of numbers is a gradient (anchors spread over the layers); a list of
// {filter, value} maps mergekit's name filters onto tensor classes. Relative model
// paths are resolved against the YAML file's folder. "seed" is an EvoMerge extension.

type mkConfig struct {
	Models      []mkModel      `yaml:"models"`
	MergeMethod string         `yaml:"merge_method"`
	BaseModel   string         `yaml:"base_model"`
	Parameters  map[string]any `yaml:"parameters"`
	DType       string         `yaml:"dtype"`
	OutDType    string         `yaml:"out_dtype"`
	Slices      []mkSlice      `yaml:"slices"`
	Seed        *uint64        `yaml:"seed"`
	Tokenizer   string         `yaml:"tokenizer_source"`
	Extra       map[string]any `yaml:",inline"`
	Chat        string         `yaml:"chat_template"` // accepted; the base's template is kept
	Name        string         `yaml:"name"`          // accepted; names a merge in multi-merge files
}

type mkModel struct {
	Model      string         `yaml:"model"`
	Parameters map[string]any `yaml:"parameters"`
}

type mkSlice struct {
	Sources []mkSource `yaml:"sources"`
}

type mkSource struct {
	Model      string         `yaml:"model"`
	LayerRange []int          `yaml:"layer_range"`
	Parameters map[string]any `yaml:"parameters"`
}

// ignoredParams are accepted for compatibility but change nothing here: all
// arithmetic is float32 already.
var ignoredParams = map[string]bool{"int8_mask": true}

// filterClasses maps mergekit's name filters (substrings of HF or GGUF names) to classes.
var filterClasses = map[string]string{
	"self_attn": ClassAttention, "attn": ClassAttention, "attention": ClassAttention,
	"mlp": ClassMLP, "ffn": ClassMLP, "feed_forward": ClassMLP,
	"norm": ClassNorm, "layernorm": ClassNorm, "input_layernorm": ClassNorm, "post_attention_layernorm": ClassNorm,
	"embed_tokens": ClassEmbedding, "token_embd": ClassEmbedding, "embed": ClassEmbedding,
	"lm_head": ClassOutput, "output": ClassOutput,
}

// LoadMergekit reads a mergekit YAML file and returns the input paths and Spec.
func LoadMergekit(path string) ([]string, Spec, error) {
	data, err := readBounded(path, 4<<20)
	if err != nil {
		return nil, Spec{}, err
	}
	inputs, spec, err := ParseMergekit(data, filepath.Dir(path))
	if err != nil {
		return nil, Spec{}, fmt.Errorf("%s: %v", path, err)
	}
	return inputs, spec, nil
}

// ParseMergekit converts mergekit YAML into input paths and a Spec; relative
// model paths are joined to dir.
func ParseMergekit(data []byte, dir string) ([]string, Spec, error) {
	var cfg mkConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, Spec{}, fmt.Errorf("mergekit config: %v", err)
	}
	if len(cfg.Extra) > 0 {
		keys := make([]string, 0, len(cfg.Extra))
		for k := range cfg.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, Spec{}, fmt.Errorf("mergekit config: unsupported key %q", keys[0])
	}
	if cfg.MergeMethod == "" {
		return nil, Spec{}, fmt.Errorf("merge_method: missing")
	}
	mi, ok := methods[cfg.MergeMethod]
	if !ok {
		return nil, Spec{}, fmt.Errorf("merge_method: unknown merge method %q (known: %s)", cfg.MergeMethod, strings.Join(Methods(), ", "))
	}
	if t := cfg.Tokenizer; t != "" && t != "base" && t != cfg.BaseModel {
		return nil, Spec{}, fmt.Errorf("tokenizer_source: %q is not supported; the child keeps the base model's tokenizer", t)
	}
	spec := Spec{Method: cfg.MergeMethod, Base: -1, Global: map[string]Param{}}
	if cfg.Seed != nil {
		spec.Seed = *cfg.Seed
	}
	var inputs []string
	index := map[string]int{}
	add := func(m string) int {
		if i, ok := index[m]; ok {
			return i
		}
		index[m] = len(inputs)
		inputs = append(inputs, m)
		return index[m]
	}
	for i, m := range cfg.Models {
		if m.Model == "" {
			return nil, Spec{}, fmt.Errorf("models[%d].model: missing", i)
		}
		add(m.Model)
	}
	for i, sl := range cfg.Slices {
		if len(sl.Sources) == 0 {
			return nil, Spec{}, fmt.Errorf("slices[%d]: no sources", i)
		}
		for j, s := range sl.Sources {
			if s.Model == "" {
				return nil, Spec{}, fmt.Errorf("slices[%d].sources[%d].model: missing", i, j)
			}
			if len(s.Parameters) > 0 {
				return nil, Spec{}, fmt.Errorf("slices[%d].sources[%d].parameters: per-slice parameters are not supported; give them per model with layer gradients", i, j)
			}
			add(s.Model)
		}
	}
	if cfg.BaseModel != "" {
		spec.Base = add(cfg.BaseModel)
	}
	if len(inputs) == 0 {
		return nil, Spec{}, fmt.Errorf("models: none given")
	}
	spec.PerModel = make([]map[string]Param, len(inputs))
	for i, m := range cfg.Models {
		pm := map[string]Param{}
		for name, v := range m.Parameters {
			if ignoredParams[name] {
				continue
			}
			p, err := mkParam(v)
			if err != nil {
				return nil, Spec{}, fmt.Errorf("models[%d].parameters.%s: %v", i, name, err)
			}
			pm[name] = p
		}
		spec.PerModel[index[m.Model]] = pm
	}
	// top-level parameters: method-wide ones go to Global, per-model ones are
	// defaults for every model that does not set them (mergekit semantics)
	names := make([]string, 0, len(cfg.Parameters))
	for name := range cfg.Parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if ignoredParams[name] {
			continue
		}
		p, err := mkParam(cfg.Parameters[name])
		if err != nil {
			return nil, Spec{}, fmt.Errorf("parameters.%s: %v", name, err)
		}
		if _, ok := mi.perModel[name]; ok {
			for i := range spec.PerModel {
				if i == spec.Base && mi.needsBase {
					continue
				}
				if spec.PerModel[i] == nil {
					spec.PerModel[i] = map[string]Param{}
				}
				if _, set := spec.PerModel[i][name]; !set {
					spec.PerModel[i][name] = p
				}
			}
			continue
		}
		spec.Global[name] = p // unknown names are reported by Validate
	}
	for i, sl := range cfg.Slices {
		var s Slice
		for j, src := range sl.Sources {
			if len(src.LayerRange) != 2 {
				return nil, Spec{}, fmt.Errorf("slices[%d].sources[%d].layer_range: want [from, to], got %v", i, j, src.LayerRange)
			}
			s.Sources = append(s.Sources, SliceSource{Model: index[src.Model], From: src.LayerRange[0], To: src.LayerRange[1]})
		}
		if len(s.Sources) == 1 {
			s = Slice{Model: s.Sources[0].Model, From: s.Sources[0].From, To: s.Sources[0].To}
		}
		spec.Slices = append(spec.Slices, s)
	}
	switch {
	case cfg.OutDType != "":
		spec.OutType = cfg.OutDType
	case cfg.DType != "":
		spec.OutType = cfg.DType
	}
	if spec.OutType != "" {
		t, err := parseOutType(spec.OutType)
		if err != nil {
			return nil, Spec{}, fmt.Errorf("dtype: %v", err)
		}
		spec.OutType = strings.ToLower(t.name)
	}
	if len(spec.Global) == 0 {
		spec.Global = nil
	}
	empty := true
	for _, pm := range spec.PerModel {
		empty = empty && len(pm) == 0
	}
	if empty {
		spec.PerModel = nil
	}
	for i, in := range inputs {
		if !filepath.IsAbs(in) && dir != "" {
			inputs[i] = filepath.Join(dir, in)
		}
	}
	if err := spec.Validate(len(inputs)); err != nil {
		return nil, Spec{}, err
	}
	return inputs, spec, nil
}

// mkParam converts one mergekit parameter value: a number or bool, a list of numbers
// (gradient), or a list of {filter, value} entries.
func mkParam(v any) (Param, error) {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return Param{}, fmt.Errorf("empty list")
		}
		if _, isMap := x[0].(map[string]any); !isMap {
			anchors, err := numbers(x)
			return Param{Anchors: anchors}, err
		}
		var p Param
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return Param{}, fmt.Errorf("entry %d: want {filter, value}", i)
			}
			val, ok := m["value"]
			if !ok {
				return Param{}, fmt.Errorf("entry %d: no value", i)
			}
			for k := range m {
				if k != "filter" && k != "value" {
					return Param{}, fmt.Errorf("entry %d: unknown key %q", i, k)
				}
			}
			anchors, err := anchorsOf(val)
			if err != nil {
				return Param{}, fmt.Errorf("entry %d: %v", i, err)
			}
			f, hasFilter := m["filter"]
			if !hasFilter {
				p.Anchors = anchors
				continue
			}
			fs, _ := f.(string)
			class, ok := filterClasses[fs]
			if !ok {
				return Param{}, fmt.Errorf("entry %d: filter %q is not a known tensor class filter (use self_attn, mlp, norm, embed_tokens, lm_head)", i, f)
			}
			if p.ByClass == nil {
				p.ByClass = map[string][]float64{}
			}
			if _, dup := p.ByClass[class]; !dup { // first matching filter wins, as in mergekit
				p.ByClass[class] = anchors
			}
		}
		return p, nil
	default:
		anchors, err := anchorsOf(v)
		return Param{Anchors: anchors}, err
	}
}

func anchorsOf(v any) ([]float64, error) {
	if l, ok := v.([]any); ok {
		return numbers(l)
	}
	f, err := number(v)
	if err != nil {
		return nil, err
	}
	return []float64{f}, nil
}

func numbers(l []any) ([]float64, error) {
	out := make([]float64, len(l))
	for i, e := range l {
		f, err := number(e)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %v", i, err)
		}
		out[i] = f
	}
	return out, nil
}

func number(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case float64:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("want a number, got %v", v)
}
