package realrun

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// ScaleDown changes sizes and the S3 member only; every other field of the
// example is kept.
func TestScaleDownKeepsTheExampleButItsSizes(t *testing.T) {
	data, err := os.ReadFile("../real-run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := ScaleDown(data)
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	if err := yaml.Unmarshal(data, &before); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(out, &after); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "seed", "selection", "crossover", "publish", "budgets"} {
		b, _ := yaml.Marshal(before[k])
		a, _ := yaml.Marshal(after[k])
		if string(a) != string(b) {
			t.Errorf("%s changed:\n%s\nwant\n%s", k, a, b)
		}
	}
	if after["generations"] != 1 || after["population"] != 4 {
		t.Errorf("not scaled down: generations %v, population %v", after["generations"], after["population"])
	}
	models := after["init"].(map[string]any)["models"].([]any)
	for _, m := range models {
		if strings.HasPrefix(m.(string), "s3://") {
			t.Errorf("model %v still names S3", m)
		}
	}
	if len(models) != 5 {
		t.Errorf("%d models, want the example's 5", len(models))
	}
}

func TestScaleDownRefusesAConfigWithoutItsSections(t *testing.T) {
	for _, doc := range []string{"name: x\n", "init: 3\nmutation: {}\nfitness: {}\n", "- a\n"} {
		if _, err := ScaleDown([]byte(doc)); err == nil {
			t.Errorf("%q: no error", doc)
		}
	}
}
