package merge

import (
	"fmt"
	"strings"
)

// outTensor is one tensor of the child and where it comes from.
type outTensor struct {
	name   string
	shape  []int64
	rowLen int64
	elems  int64
	typ    elemType
	srcs   []*srcTensor // one per contributing model
	model  []int        // input index of each source
	base   int          // index into srcs of the base model, -1 = none
	class  string
	pos    float64 // position for gradient anchors, in [0, 1]
}

// plan lists the child's tensors in output order, checks that the parents agree
// (names, shapes) and records the child's layer count.
type plan struct {
	tensors   []*outTensor
	numLayers int // output layers
	ref       *inputModel
	outType   elemType
}

func numLayers(m *inputModel) int {
	n := 0
	for _, t := range m.tensors {
		if l, _, _ := layerOf(t.name); l+1 > n {
			n = l + 1
		}
	}
	return n
}

// defaultOutType: the type of the reference's largest float tensor, F16 for quantized models.
func defaultOutType(m *inputModel) elemType {
	var best *srcTensor
	for _, t := range m.tensors {
		if best == nil || t.elements() > best.elements() {
			best = t
		}
	}
	if best == nil || !best.typ.isFloat() {
		return typeF16
	}
	return best.typ
}

func buildPlan(spec *Spec, inputs []*inputModel) (*plan, error) {
	for i, m := range inputs[1:] {
		if m.format != inputs[0].format {
			return nil, fmt.Errorf("input %s is %s but input %s is %s: all parents must share one format", m.path, m.format, inputs[0].path, inputs[i].format)
		}
	}
	refIdx := 0
	if spec.Base >= 0 {
		refIdx = spec.Base
	} else if len(spec.Slices) > 0 {
		refIdx = spec.Slices[0].sources()[0].Model
	}
	ref := inputs[refIdx]
	p := &plan{ref: ref}
	if spec.OutType != "" {
		t, err := parseOutType(spec.OutType)
		if err != nil {
			return nil, err
		}
		p.outType = t
	} else {
		p.outType = defaultOutType(ref)
	}
	mi := methods[spec.Method]

	newOut := func(name string, layer int, srcModels []int, srcNames []string, before bool) (*outTensor, error) {
		o := &outTensor{name: name, base: -1, class: classOf(name)}
		for k, idx := range srcModels {
			m := inputs[idx]
			t, ok := m.byName[srcNames[k]]
			if !ok {
				return nil, fmt.Errorf("tensor %q: missing in %s (present in %s)", srcNames[k], m.path, ref.path)
			}
			if len(o.srcs) > 0 && !sameShape(t.shape, o.srcs[0].shape) {
				return nil, fmt.Errorf("tensor %q: shape %v in %s but %v in %s", srcNames[k], t.shape, m.path, o.srcs[0].shape, o.srcs[0].path)
			}
			o.srcs = append(o.srcs, t)
			o.model = append(o.model, idx)
			if idx == spec.Base {
				o.base = len(o.srcs) - 1
			}
		}
		s0 := o.srcs[0]
		o.shape, o.rowLen, o.elems = s0.shape, s0.rowLen, s0.elements()
		o.typ = p.outType
		if ref.format == "gguf" && len(s0.shape) == 1 && s0.typ == typeF32 {
			o.typ = typeF32 // ggml keeps norms and biases in F32
		}
		if ref.format == "gguf" && o.rowLen%o.typ.block != 0 {
			return nil, fmt.Errorf("tensor %q: row of %d does not fit %s blocks", name, o.rowLen, o.typ.name)
		}
		o.pos = paramPos(layer, p.numLayers, before)
		if spec.Method == "slerp" && o.base > 0 {
			// slerp runs from the base (t = 0) to the other model (t = 1)
			o.srcs[0], o.srcs[o.base] = o.srcs[o.base], o.srcs[0]
			o.model[0], o.model[o.base] = o.model[o.base], o.model[0]
			o.base = 0
		}
		if mi.needsBase && o.base < 0 {
			return nil, fmt.Errorf("tensor %q: the base model is not among its sources", name)
		}
		return o, nil
	}

	if len(spec.Slices) == 0 {
		all := make([]int, len(inputs))
		for i := range all {
			all[i] = i
		}
		if spec.Method == "passthrough" {
			all = []int{refIdx}
		}
		p.numLayers = numLayers(ref)
		// every parent must hold exactly the reference's tensors
		for _, m := range inputs {
			if len(m.tensors) != len(ref.tensors) {
				for _, t := range m.tensors {
					if _, ok := ref.byName[t.name]; !ok {
						return nil, fmt.Errorf("tensor %q: present in %s but not in %s", t.name, m.path, ref.path)
					}
				}
			}
		}
		seenLayer := false
		for _, t := range ref.tensors {
			l, _, _ := layerOf(t.name)
			seenLayer = seenLayer || l >= 0
			names := make([]string, len(all))
			for i := range names {
				names[i] = t.name
			}
			o, err := newOut(t.name, l, all, names, !seenLayer)
			if err != nil {
				return nil, err
			}
			p.tensors = append(p.tensors, o)
		}
		return p, nil
	}

	// Slices: the child's layers are the slices' layer ranges, renumbered from 0.
	for _, sl := range spec.Slices {
		src := sl.sources()
		p.numLayers += src[0].To - src[0].From
		for _, s := range src {
			if n := numLayers(inputs[s.Model]); s.To > n {
				return nil, fmt.Errorf("slices: layer range [%d, %d) exceeds the %d layers of %s", s.From, s.To, n, inputs[s.Model].path)
			}
		}
	}
	var pre, post []*srcTensor
	seenLayer := false
	for _, t := range ref.tensors {
		if l, _, _ := layerOf(t.name); l >= 0 {
			seenLayer = true
		} else if seenLayer {
			post = append(post, t)
		} else {
			pre = append(pre, t)
		}
	}
	// Non-layer tensors (embeddings, final norm, head) are merged from every model
	// that appears in a slice; passthrough takes them from the reference.
	var outer []int
	if spec.Method == "passthrough" {
		outer = []int{refIdx}
	} else {
		seen := map[int]bool{}
		for _, sl := range spec.Slices {
			for _, s := range sl.sources() {
				if !seen[s.Model] {
					seen[s.Model] = true
					outer = append(outer, s.Model)
				}
			}
		}
	}
	addOuter := func(ts []*srcTensor, before bool) error {
		for _, t := range ts {
			names := make([]string, len(outer))
			for i := range names {
				names[i] = t.name
			}
			o, err := newOut(t.name, -1, outer, names, before)
			if err != nil {
				return err
			}
			p.tensors = append(p.tensors, o)
		}
		return nil
	}
	if err := addOuter(pre, true); err != nil {
		return nil, err
	}
	outLayer := 0
	for _, sl := range spec.Slices {
		src := sl.sources()
		for i := 0; i < src[0].To-src[0].From; i++ {
			// the layer's tensors, in the first source's order
			first := inputs[src[0].Model]
			prefix := src[0].From + i
			for _, t := range first.tensors {
				if l, _, _ := layerOf(t.name); l != prefix {
					continue
				}
				models := make([]int, len(src))
				names := make([]string, len(src))
				for k, s := range src {
					models[k] = s.Model
					names[k] = withLayer(t.name, s.From+i)
				}
				o, err := newOut(withLayer(t.name, outLayer), outLayer, models, names, false)
				if err != nil {
					return nil, err
				}
				p.tensors = append(p.tensors, o)
			}
			outLayer++
		}
	}
	if err := addOuter(post, false); err != nil {
		return nil, err
	}
	return p, nil
}

// describe is a one-line summary used in errors and logs.
func (o *outTensor) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v from", o.name, o.shape)
	for _, s := range o.srcs {
		fmt.Fprintf(&b, " %s", s.path)
	}
	return b.String()
}
