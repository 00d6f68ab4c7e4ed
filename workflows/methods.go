package workflows

import "sort"

// The engine (internal/merge, spec.go) is the source of truth for merge
// methods: which exist, which need a base, how many parents they take and
// which parameters they accept, global or per model. The workflow may import
// only the Temporal SDK, so it keeps what it needs to sample genomes here, and
// TestMethodTableAgreesWithTheEngine (workflows_test, which may import
// internal/merge) fails when this table names anything the engine does not
// accept or disagrees with it about a base or the parent count.

// MethodInfo describes what the workflow knows about a merge method of
// internal/merge: whether it needs a base model, how many parents it takes,
// which parameters it accepts (and whether the engine reads each once for the
// merge or once per model), and the ranges sampled when the config names none.
type MethodInfo struct {
	NeedsBase bool
	// ExactParents: 0 = any number >= 2.
	ExactParents int
	// Params: every parameter the engine accepts; true = global (one value
	// for the merge), false = per model (one value per parent).
	Params map[string]bool
	// Defaults: ranges sampled when the run config gives none.
	Defaults map[string]ParamRange
}

// Short names for summaries ("density" -> "d").
var paramShort = map[string]string{"density": "d", "weight": "w", "t": "t", "lambda": "λ", "gamma": "γ"}

func taskVectorMethod(density bool, gamma bool) MethodInfo {
	m := MethodInfo{NeedsBase: true,
		Params:   map[string]bool{"weight": false, "lambda": true},
		Defaults: map[string]ParamRange{"weight": {Min: 0.3, Max: 1, PerModel: true}}}
	if density {
		m.Params["density"] = false
		m.Defaults["density"] = ParamRange{Min: 0.3, Max: 0.9}
	}
	if gamma {
		m.Params["gamma"] = false
	}
	return m
}

// Methods are the merge methods internal/merge implements that the workflow
// can sample.
var Methods = map[string]MethodInfo{
	"linear": {Params: map[string]bool{"weight": false},
		Defaults: map[string]ParamRange{"weight": {Min: 0.2, Max: 1, PerModel: true}}},
	"slerp": {ExactParents: 2, Params: map[string]bool{"t": true},
		Defaults: map[string]ParamRange{"t": {Min: 0.2, Max: 0.8, Anchors: 3}}},
	"task_arithmetic":  taskVectorMethod(false, false),
	"ties":             taskVectorMethod(true, false),
	"dare_ties":        taskVectorMethod(true, false),
	"dare_linear":      taskVectorMethod(true, false),
	"breadcrumbs":      taskVectorMethod(true, true),
	"breadcrumbs_ties": taskVectorMethod(true, true),
}

func methodNames() []string { return sortedKeys(Methods) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// OutTypes are the merge output types a crossover method may ask for (each
// one merge.Spec.OutType accepts; checked by the method-table test).
var OutTypes = []string{"f32", "f16"}
