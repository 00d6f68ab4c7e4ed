package merge

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/safetensors"
)

// TIES and DARE-TIES give the same bytes at parallelism 1, 2 and 8 and on every
// repeat in one process (pools, caches and the sampled select's scratch carry no state
// from one merge to the next), on F16 tensors past bracketMin, both with the default
// sample (the bracket is mostly refused at this size) and with a dense one (the
// sampled select answers for TIES).
func TestTiesSameBytesAtAnyParallelismAndRepeat(t *testing.T) {
	defer func(stride int64) { sampleStride = stride }(sampleStride)
	d := t.TempDir()
	tb, ta, tc := bracketModels(7)
	inputs := []string{writeST(t, filepath.Join(d, "base"), safetensors.F16, tb), writeST(t, filepath.Join(d, "a"), safetensors.F16, ta),
		writeST(t, filepath.Join(d, "b"), safetensors.F16, tc)}
	for _, method := range []string{"ties", "dare_ties"} {
		spec := Spec{Method: method, Base: 0, Seed: 9, PerModel: []map[string]Param{nil, {"weight": Const(0.6), "density": Const(0.3)},
			{"weight": Const(0.5), "density": Const(0.7)}}}
		var want [sha256.Size]byte // the exact select: the same bytes with either sample
		for si, stride := range []int64{1 << 16, sampleRun} {
			sampleStride = stride
			hits := bracketHits.Load()
			for i, par := range []int{1, 2, 8, 1, 2, 8} {
				out := filepath.Join(d, fmt.Sprintf("%s-%d.safetensors", method, i))
				res := mustMerge(t, inputs, out, spec, Options{Parallelism: par})
				data, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				got := sha256.Sum256(data)
				if res.SHA256 != fmt.Sprintf("%x", got) {
					t.Fatalf("%s parallelism %d: Result.SHA256 %s is not the file's %x", method, par, res.SHA256, got)
				}
				if si == 0 && i == 0 {
					want = got
				} else if got != want {
					t.Fatalf("%s sample stride %d, run %d at parallelism %d: bytes differ from the first run (default sample, parallelism 1)", method, stride, i, par)
				}
			}
			// four tensors, six runs; the heavy-tie "zeros" tensor and the skewed ones may
			// fall back (dare_ties drops at random: no magnitude select)
			if method == "ties" && stride == sampleRun && bracketHits.Load()-hits < 6 {
				t.Fatalf("%s: the sampled select answered %d tensors in 6 dense-sample runs, want at least 6", method, bracketHits.Load()-hits)
			}
			os.Remove(filepath.Join(d, method+"-0.safetensors"))
		}
	}
}
