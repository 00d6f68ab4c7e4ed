package main

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/evomerge/evomerge/internal/fuzzcheck"
	"github.com/evomerge/evomerge/workflows"
)

// yamlConfigBound is the starter's run-config parser's bound, the same yaml.v3 bound as the mergekit
// reader's (internal/merge: ~140 bytes per input byte measured, up to ~400k alias-decoded nodes in the
// constant); the JSON it produces goes through workflows.ParseRunConfig. loadRunConfig reads at most 4 MiB.
var yamlConfigBound = fuzzcheck.Bound{PerByte: 512, Fixed: 64 << 20}

// FuzzParseRunConfigYAML feeds the starter's run-config reader (YAML or JSON, with file:line errors). What
// it accepts is the config workflows.ParseRunConfig gives for the same document as JSON.
func FuzzParseRunConfigYAML(f *testing.F) {
	for _, s := range []string{
		"name: nightly\nseed: 7\npopulation: 6\ngenerations: 3\nselection:\n  scheme: truncation\n  elitism: 1\ncrossover:\n  methods:\n    - name: ties\n      params:\n        density: {min: 0.4, max: 0.6}\n    - name: slerp\ninit:\n  demo: {}\nbudgets:\n  wall_time: 2h\n",
		`{"name": "j", "population": 4, "init": {"demo": {}}}`,
		"population: &p 4\ngenerations: *p\ninit: {demo: {}}\n",
		"population: [1, 2]\n",
		"crossover:\n  methods:\n    - name: nope\n  methodz: 1\n",
		"- a\n- b\n",
		"a: &a [*a]\n",
		"{? [1]: 2}\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c workflows.RunConfig
		var err error
		fuzzcheck.Check(t, "starter parseRunConfig", len(b), yamlConfigBound, func() { c, err = parseRunConfig("run.yaml", b) })
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("accepted config does not marshal: %v", err)
		}
		c2, err := workflows.ParseRunConfig(js)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("accepted YAML config is not the same as JSON: %v", err)
		}
	})
}
