package merge

import (
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/fuzzcheck"
)

// mergekitBound is ParseMergekit's allocation bound. yaml.v3 builds a node per scalar, key and collection
// (measured: ~140 bytes allocated per input byte for a long flat list) and expands aliases while decoding;
// its alias-ratio check stops a document whose decoded nodes are mostly aliases (the nested bombs below
// are refused after ~230 KB) but lets up to ~400k decoded nodes through when 1% of them are real, tens of
// MB from a few KB. That is the constant; LoadMergekit reads at most 4 MiB.
var mergekitBound = fuzzcheck.Bound{PerByte: 512, Fixed: 64 << 20}

// aliasBomb nests aliases levels deep, each level ten references to the one before.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("merge_method: linear\nmodels: [{model: a}]\nparameters:\n  a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n")
	for i := 1; i <= levels; i++ {
		b.WriteString("  a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func FuzzParseMergekit(f *testing.F) {
	for _, s := range []string{
		"models:\n  - model: base\n  - model: a\n    parameters:\n      density: [0.2, 0.5, 0.8]\n      weight:\n        - filter: mlp\n          value: 0.3\n        - value: [0.7, 0.6]\n  - model: b\n    parameters:\n      weight: 0.5\nmerge_method: ties\nbase_model: base\nparameters:\n  normalize: true\n  int8_mask: true\n  density: 0.4\ndtype: bfloat16\nseed: 7\n",
		"slices:\n  - sources:\n      - model: A\n        layer_range: [0, 3]\n      - model: B\n        layer_range: [0, 3]\nmerge_method: slerp\nbase_model: A\nparameters:\n  t:\n    - filter: self_attn\n      value: [0, 0.5, 0.3, 0.7, 1]\n    - value: 0.5\ndtype: float16\n",
		"merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 2]}]}, {sources: [{model: b, layer_range: [1, 9999999999]}]}]\n",
		"merge_method: dare_ties\nbase_model: b\nmodels: [{model: a, parameters: {density: .nan, weight: -.inf}}]\n",
		"merge_method: linear\nmodels: [{model: a, parameters: {weight: [{filter: [1], value: {x: 1}}]}}]\n",
		"merge_method: linear\nmodels: [{model: a}]\n---\nmerge_method: slerp\n",
		aliasBomb(6),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var inputs []string
		var spec Spec
		var err error
		fuzzcheck.Check(t, "merge.ParseMergekit", len(b), mergekitBound, func() { inputs, spec, err = ParseMergekit(b, "/models") })
		if err != nil {
			return
		}
		// An accepted config is one the merge can be planned from.
		if verr := spec.Validate(len(inputs)); verr != nil {
			t.Fatalf("accepted spec fails validation: %v", verr)
		}
		if spec.Base >= len(inputs) {
			t.Fatalf("base %d of %d inputs", spec.Base, len(inputs))
		}
	})
}

// The bound holds at its two ends: a short file of nested aliases (yaml.v3 stops it with "excessive
// aliasing" once most decoded nodes come from aliases, past ~400k) and a long flat list (nodes per byte).
func TestMergekitAllocationBound(t *testing.T) {
	flat := "merge_method: linear\nmodels: [{model: a}]\nparameters:\n  weight: [" + strings.Repeat("1,", 256<<10) + "1]\n"
	for name, doc := range map[string]string{"alias bomb": aliasBomb(7), "alias bomb 6": aliasBomb(6), "flat list": flat} {
		var err error
		got := fuzzcheck.Bytes(func() { _, _, err = ParseMergekit([]byte(doc), "") })
		t.Logf("%s: %d input bytes, %d allocated (%.0f per byte), err %v", name, len(doc), got, float64(got)/float64(len(doc)), err)
		if got > mergekitBound.Limit(len(doc)) {
			t.Errorf("%s: %d bytes allocated, over the bound %d", name, got, mergekitBound.Limit(len(doc)))
		}
	}
}
