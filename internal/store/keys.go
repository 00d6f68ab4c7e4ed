package store

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/evomerge/evomerge/internal/atomicfile"
)

// Ref names a content object: "sha256:" followed by the 64 lowercase hex digits
// of the SHA-256 of its bytes.
type Ref string

const refPrefix = "sha256:"

// ParseRef checks that s is a well-formed content reference.
func ParseRef(s string) (Ref, error) {
	if !strings.HasPrefix(s, refPrefix) {
		return "", fmt.Errorf("store: reference %q does not start with %q", s, refPrefix)
	}
	h := s[len(refPrefix):]
	if len(h) != 64 {
		return "", fmt.Errorf("store: reference %q: want 64 hex digits, got %d", s, len(h))
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return "", fmt.Errorf("store: reference %q: digest is not lowercase hex", s)
	}
	return Ref(s), nil
}

// RefFromHex builds a reference from a hex digest.
func RefFromHex(h string) (Ref, error) { return ParseRef(refPrefix + h) }

// Hex is the digest part of the reference.
func (r Ref) Hex() string { return strings.TrimPrefix(string(r), refPrefix) }

func (r Ref) String() string { return string(r) }

// Kind is a family of content objects; it decides where they live in the store.
type Kind struct {
	dir, ext string
}

var (
	// Models are GGUF files: models/<hex>.gguf.
	Models = Kind{dir: "models", ext: ".gguf"}
	// Blobs are any other content-addressed bytes (checkpoints): blobs/<hex>.
	Blobs = Kind{dir: "blobs"}
	// Data are the files a run reads (benchmark items, fine-tuning
	// datasets; JSONL, gzipped JSONL or Parquet, told apart by their bytes),
	// uploaded by the starter and named store:<hex> in run configs: data/<hex>.
	Data = Kind{dir: "data"}
	// Reports are rendered HTML reports of runs and experiments:
	// reports/<hex>.html, opened in a browser from the store's location.
	Reports = Kind{dir: "reports", ext: ".html"}
)

func (k Kind) String() string { return k.dir }

func (k Kind) key(r Ref) string { return k.dir + "/" + r.Hex() + k.ext }

// kindOfKey maps a backend key back to its kind and reference; ok is false for
// keys outside the content space.
func kindOfKey(key string) (Kind, Ref, bool) {
	for _, k := range []Kind{Models, Blobs, Data, Reports} {
		rest, found := strings.CutPrefix(key, k.dir+"/")
		if !found || !strings.HasSuffix(rest, k.ext) {
			continue
		}
		r, err := RefFromHex(strings.TrimSuffix(rest, k.ext))
		if err != nil {
			return Kind{}, "", false
		}
		return k, r, true
	}
	return Kind{}, "", false
}

const (
	namedDir      = "named"
	maxNameLength = 512
	// tmpMarker starts the name of every object still being written; no valid
	// key segment may start with it.
	tmpMarker = atomicfile.TempPrefix
)

// ValidateName checks a key for a named object (checkpoint pointer, eval cache
// entry, run pointer). Names are relative slash-separated paths of
// [A-Za-z0-9._=+@-] segments; "..", ".", empty segments, absolute paths and
// backslashes are rejected so that no name can leave the store root.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("store: empty object name")
	}
	if len(name) > maxNameLength {
		return fmt.Errorf("store: object name %.40q... is longer than %d bytes", name, maxNameLength)
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("store: object name %q is absolute", name)
	}
	for i, seg := range strings.Split(name, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("store: object name %q has an empty segment %d", name, i)
		case seg == "." || seg == "..":
			return fmt.Errorf("store: object name %q contains %q", name, seg)
		case strings.HasPrefix(seg, tmpMarker):
			return fmt.Errorf("store: object name %q: segment %q uses the reserved prefix %q", name, seg, tmpMarker)
		}
		for _, c := range seg {
			if !nameChar(c) {
				return fmt.Errorf("store: object name %q contains the character %q", name, c)
			}
		}
	}
	return nil
}

func nameChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.ContainsRune("._=+@-", c)
}

func namedKey(name string) string { return namedDir + "/" + name }

// Names of the named objects the system keeps, the one definition of each
// (the activities write them, infra/chaos inspects them). All live under
// named/ in the backend.
const (
	// MemoPrefix holds memoised activity outputs: memo/<op>/<key>.json.
	MemoPrefix = "memo/"
	// CheckpointsPrefix holds the resume pointer of each running fine-tune:
	// checkpoints/<key>.json.
	CheckpointsPrefix = "checkpoints/"
	// EvalCachePrefix holds evaluation results per model and task:
	// evalcache/<model hex>/<task key hash>.json.
	EvalCachePrefix = "evalcache/"
	// LineagesPrefix holds each lineage's last published population:
	// lineages/<name>/population.json.
	LineagesPrefix = "lineages/"
	// RunsPrefix holds each run's published winner: runs/<name>/winner.json.
	RunsPrefix = "runs/"
)

// MemoName is the memo of operation op ("merge", "finetune", "init", ...) under key.
func MemoName(op, key string) string { return MemoPrefix + op + "/" + key + ".json" }

// CheckpointName is the resume pointer of the fine-tune under key.
func CheckpointName(key string) string { return CheckpointsPrefix + key + ".json" }

// EvalCacheName is the cached result of the task with key hash on the model with digest modelHex.
func EvalCacheName(modelHex, hash string) string {
	return EvalCachePrefix + modelHex + "/" + hash + ".json"
}

// LineageName is where lineage name's last population is recorded.
func LineageName(name string) string { return LineagesPrefix + name + "/population.json" }

// WinnerName is where run's published winner is recorded.
func WinnerName(run string) string { return RunsPrefix + run + "/winner.json" }
