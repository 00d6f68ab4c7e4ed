// Package merge crosses models over by merging their weights: linear, slerp,
// task arithmetic, TIES, DARE, breadcrumbs, model stock and passthrough
// (frankenmerge by layer slices), with mergekit's semantics. Every method parameter
// is a genome: per layer (anchors interpolated across the layers) and per tensor
// class. Models stream through one chunk at a time from GGUF or safetensors, so
// memory stays a few chunks per worker whatever the model size.
package merge

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Param is one method parameter: anchors interpolated linearly across the layers
// (one anchor = constant), optionally overridden per tensor class ("attention",
// "mlp", "norm", "embedding", "output", "other").
type Param struct {
	Anchors []float64            `json:"anchors"`
	ByClass map[string][]float64 `json:"by_class,omitempty"`
}

// Const is a Param with one value everywhere.
func Const(v float64) Param { return Param{Anchors: []float64{v}} }

// SliceSource is one layer range [From, To) of input Model.
type SliceSource struct {
	Model int `json:"model"`
	From  int `json:"from"`
	To    int `json:"to"`
}

// Slice is a run of output layers. In the short form (Model/From/To) it copies one
// layer range (passthrough); with Sources, the ranges (all of one length) are merged
// layer by layer with the spec's method.
type Slice struct {
	Model   int           `json:"model"`
	From    int           `json:"from"`
	To      int           `json:"to"`
	Sources []SliceSource `json:"sources,omitempty"`
}

func (s Slice) sources() []SliceSource {
	if len(s.Sources) > 0 {
		return s.Sources
	}
	return []SliceSource{{Model: s.Model, From: s.From, To: s.To}}
}

// Spec is a complete merge: the method, its genome and the seed. It round-trips JSON.
type Spec struct {
	Method   string             `json:"method"`
	Base     int                `json:"base"` // index of the base input, -1 = none
	Global   map[string]Param   `json:"global,omitempty"`
	PerModel []map[string]Param `json:"per_model,omitempty"`
	Slices   []Slice            `json:"slices,omitempty"`
	Seed     uint64             `json:"seed"`
	OutType  string             `json:"out_type,omitempty"` // "f32", "f16", "bf16"; default: the base's float type
}

// Tensor classes a Param can override.
const (
	ClassAttention = "attention"
	ClassMLP       = "mlp"
	ClassNorm      = "norm"
	ClassEmbedding = "embedding"
	ClassOutput    = "output"
	ClassOther     = "other"
)

var knownClasses = map[string]bool{ClassAttention: true, ClassMLP: true, ClassNorm: true, ClassEmbedding: true, ClassOutput: true, ClassOther: true}

// paramRule is the valid range of a parameter and its default.
type paramRule struct {
	lo, hi     float64
	loOpen     bool
	def        float64
	hasDefault bool
}

func (r paramRule) ok(v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	if v < r.lo || v > r.hi || (r.loOpen && v == r.lo) {
		return false
	}
	return true
}

func (r paramRule) String() string {
	lb := "["
	if r.loOpen {
		lb = "("
	}
	return fmt.Sprintf("%s%g, %g]", lb, r.lo, r.hi)
}

var (
	anyFinite = paramRule{lo: -math.MaxFloat64, hi: math.MaxFloat64}
	unit      = paramRule{lo: 0, hi: 1}
	boolean   = paramRule{lo: 0, hi: 1}
)

func with(r paramRule, def float64) paramRule { r.def, r.hasDefault = def, true; return r }

// methodInfo says what a method needs and which parameters it takes.
type methodInfo struct {
	needsBase  bool
	global     map[string]paramRule
	perModel   map[string]paramRule
	minModels  int // non-base models
	maxModels  int // 0 = unlimited
	sparsify   sparsifyKind
	consensus  bool
	rescale    bool
	normalizeD float64
}

type sparsifyKind int

const (
	sparsifyNone sparsifyKind = iota
	sparsifyMagnitude
	sparsifyRandom
	sparsifyOutliers
)

func gtaInfo(sp sparsifyKind, consensus, rescale bool, normalize float64) methodInfo {
	pm := map[string]paramRule{"weight": with(anyFinite, 1)}
	switch sp {
	case sparsifyMagnitude:
		pm["density"] = with(unit, 1)
	case sparsifyRandom:
		pm["density"] = with(paramRule{lo: 0, hi: 1, loOpen: true}, 1)
	case sparsifyOutliers:
		pm["density"] = with(unit, 0.9)
		pm["gamma"] = with(unit, 0.01)
	}
	return methodInfo{
		needsBase: true, minModels: 1, sparsify: sp, consensus: consensus, rescale: rescale, normalizeD: normalize,
		global:   map[string]paramRule{"lambda": with(anyFinite, 1), "normalize": with(boolean, normalize)},
		perModel: pm,
	}
}

var methods = map[string]methodInfo{
	"linear": {minModels: 1, global: map[string]paramRule{"normalize": with(boolean, 1)},
		perModel: map[string]paramRule{"weight": with(anyFinite, 1)}},
	"slerp": {minModels: 2, maxModels: 2, global: map[string]paramRule{"t": unit}},
	"passthrough": {minModels: 1, global: map[string]paramRule{},
		perModel: map[string]paramRule{"scale": with(anyFinite, 1)}},
	"model_stock":      {needsBase: true, minModels: 2, global: map[string]paramRule{}},
	"task_arithmetic":  gtaInfo(sparsifyNone, false, false, 0),
	"ties":             gtaInfo(sparsifyMagnitude, true, false, 1),
	"dare_ties":        gtaInfo(sparsifyRandom, true, true, 1),
	"dare_linear":      gtaInfo(sparsifyRandom, false, true, 0),
	"breadcrumbs":      gtaInfo(sparsifyOutliers, false, false, 0),
	"breadcrumbs_ties": gtaInfo(sparsifyOutliers, true, false, 1),
}

// Methods lists the supported method names, sorted.
func Methods() []string {
	out := make([]string, 0, len(methods))
	for k := range methods {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Validate checks the spec against n inputs: method, base, parameter names and
// ranges, slices. Errors name the field at fault.
func (s *Spec) Validate(n int) error {
	mi, ok := methods[s.Method]
	if !ok {
		return fmt.Errorf("method: unknown merge method %q (known: %s)", s.Method, strings.Join(Methods(), ", "))
	}
	if n < 1 {
		return fmt.Errorf("inputs: no models given")
	}
	if s.Base < -1 || s.Base >= n {
		return fmt.Errorf("base: index %d out of range for %d inputs", s.Base, n)
	}
	if mi.needsBase && s.Base < 0 {
		return fmt.Errorf("base: method %s needs a base model", s.Method)
	}
	if s.OutType != "" {
		switch strings.ToLower(s.OutType) {
		case "f32", "f16", "bf16", "float32", "float16", "bfloat16":
		default:
			return fmt.Errorf("out_type: unsupported %q (want f32, f16 or bf16)", s.OutType)
		}
	}
	if len(s.PerModel) > n {
		return fmt.Errorf("per_model: %d entries for %d inputs", len(s.PerModel), n)
	}
	if len(s.Slices) == 0 {
		if err := mi.checkCount(s.Method, n); err != nil {
			return err
		}
	}
	for name, p := range s.Global {
		r, ok := mi.global[name]
		if !ok {
			return fmt.Errorf("global.%s: unknown parameter for method %s", name, s.Method)
		}
		if err := checkParam("global."+name, p, r); err != nil {
			return err
		}
	}
	for name, r := range mi.global {
		if _, ok := s.Global[name]; !ok && !r.hasDefault {
			return fmt.Errorf("global.%s: required by method %s", name, s.Method)
		}
	}
	for i, pm := range s.PerModel {
		for name, p := range pm {
			r, ok := mi.perModel[name]
			if !ok {
				return fmt.Errorf("per_model[%d].%s: unknown parameter for method %s", i, name, s.Method)
			}
			if err := checkParam(fmt.Sprintf("per_model[%d].%s", i, name), p, r); err != nil {
				return err
			}
		}
	}
	if mi.sparsify == sparsifyOutliers {
		// density + gamma must leave a non-negative bottom share; checked on anchors
		// pairwise, which bounds every interpolated value too.
		for i := range s.PerModel {
			d, g := s.PerModel[i]["density"], s.PerModel[i]["gamma"]
			for _, dv := range allValues(d, mi.perModel["density"].def) {
				for _, gv := range allValues(g, mi.perModel["gamma"].def) {
					if dv+gv > 1 {
						return fmt.Errorf("per_model[%d]: density %g + gamma %g exceeds 1", i, dv, gv)
					}
				}
			}
		}
	}
	for i, sl := range s.Slices {
		srcs := sl.sources()
		for j, src := range srcs {
			if src.Model < 0 || src.Model >= n {
				return fmt.Errorf("slices[%d].sources[%d].model: index %d out of range for %d inputs", i, j, src.Model, n)
			}
			if src.From < 0 || src.To <= src.From {
				return fmt.Errorf("slices[%d].sources[%d]: empty or negative layer range [%d, %d)", i, j, src.From, src.To)
			}
			if src.To-src.From != srcs[0].To-srcs[0].From {
				return fmt.Errorf("slices[%d].sources[%d]: layer range length %d differs from %d", i, j, src.To-src.From, srcs[0].To-srcs[0].From)
			}
		}
		hasBase := false
		for _, src := range srcs {
			hasBase = hasBase || src.Model == s.Base
		}
		if mi.needsBase && !hasBase {
			return fmt.Errorf("slices[%d]: method %s needs the base model (input %d) among the sources", i, s.Method, s.Base)
		}
		if err := mi.checkCount(s.Method, len(srcs)); err != nil && s.Method != "passthrough" {
			return fmt.Errorf("slices[%d]: %v", i, err)
		}
		if s.Method == "passthrough" && len(srcs) != 1 {
			return fmt.Errorf("slices[%d]: passthrough takes one source per slice, got %d", i, len(srcs))
		}
	}
	return nil
}

// checkCount checks the number of models one output tensor is merged from.
func (mi methodInfo) checkCount(method string, n int) error {
	others := n
	if mi.needsBase {
		others = n - 1
	}
	if method == "slerp" && n != 2 {
		return fmt.Errorf("method slerp: needs exactly 2 models, got %d", n)
	}
	if others < mi.minModels {
		return fmt.Errorf("method %s: needs at least %d models besides the base, got %d", method, mi.minModels, others)
	}
	return nil
}

func allValues(p Param, def float64) []float64 {
	if len(p.Anchors) == 0 && len(p.ByClass) == 0 {
		return []float64{def}
	}
	out := append([]float64(nil), p.Anchors...)
	for _, v := range p.ByClass {
		out = append(out, v...)
	}
	return out
}

func checkParam(field string, p Param, r paramRule) error {
	if len(p.Anchors) == 0 && len(p.ByClass) == 0 {
		return fmt.Errorf("%s: no anchors", field)
	}
	for i, v := range p.Anchors {
		if !r.ok(v) {
			return fmt.Errorf("%s: anchors[%d] = %g out of range %s", field, i, v, r)
		}
	}
	for c, vs := range p.ByClass {
		if !knownClasses[c] {
			return fmt.Errorf("%s: unknown tensor class %q", field, c)
		}
		if len(vs) == 0 {
			return fmt.Errorf("%s.by_class.%s: no anchors", field, c)
		}
		for i, v := range vs {
			if !r.ok(v) {
				return fmt.Errorf("%s.by_class.%s[%d] = %g out of range %s", field, c, i, v, r)
			}
		}
	}
	return nil
}
