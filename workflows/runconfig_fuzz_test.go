package workflows

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/evomerge/evomerge/internal/fuzzcheck"
)

// runConfigBound is ParseRunConfig's allocation bound: encoding/json decodes into the config's fixed
// structure (maps and lists grow with the input only), and validation allocates messages per bad field.
var runConfigBound = fuzzcheck.Bound{PerByte: 128, Fixed: 4 << 20}

// FuzzParseRunConfig feeds the JSON entry point of the run config (the workflow input; the starter's YAML
// goes through it too). What it accepts must survive a round trip: the config it returns, written out
// and parsed again, is the same config — so a workflow input once accepted never changes meaning.
func FuzzParseRunConfig(f *testing.F) {
	demo, err := json.Marshal(DemoConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	for _, s := range []string{
		`{"name": "nightly", "seed": 7, "population": 6, "generations": 3,
  "selection": {"scheme": "truncation", "elitism": 1},
  "crossover": {"methods": [{"name": "ties", "params": {"density": {"min": 0.4, "max": 0.6}}}, {"name": "slerp"}]},
  "init": {"demo": {}}, "budgets": {"wall_time": "2h"}}`,
		`{"population": 1000000000, "generations": 1000000000, "init": {"demo": {}}}`,
		`{"population": 4, "init": {"demo": {}}, "budgets": {"wall_time": "-5m"}}`,
		`{"population": 4, "init": {"demo": {}}, "crossover": {"methods": [{"name": "ties", "params": {"density": {"min": 1e308, "max": -1e308}}}]}}`,
		`{"populaton": 4}`,
		`{} {}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c RunConfig
		var err error
		fuzzcheck.Check(t, "workflows.ParseRunConfig", len(b), runConfigBound, func() { c, err = ParseRunConfig(b) })
		if err != nil {
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("accepted config does not marshal: %v", err)
		}
		c2, err := ParseRunConfig(again)
		if err != nil {
			t.Fatalf("accepted config, written out, is refused: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("accepted config changes on a round trip:\n%+v\n%+v", c, c2)
		}
	})
}
