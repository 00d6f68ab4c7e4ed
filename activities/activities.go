// Package activities adapts EvoMerge's engines (merge, fine-tune, evaluate)
// to Temporal activities. Each activity fetches its inputs from the store by
// content reference, derives its output key from its input so a retry whose
// output exists returns at once, heartbeats progress, and turns input that can
// never succeed into a non-retryable typed error. No algorithm lives here.
package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// Config is what every activity needs from its worker.
type Config struct {
	Store *store.Store
	// WorkDir holds scratch files (outputs before upload, training data);
	// default: a directory under os.TempDir().
	WorkDir string
	// Threads for compute engines; default: number of CPUs. ggml's CPU
	// threads busy-wait, so never more than the cores this worker owns.
	Threads int
	// Device is the compute device: "cpu" (default) or "cuda". Models load
	// there, and fine-tunes train there.
	Device string
	// CUDALibrary is libggml-cuda.so for the cuda device.
	CUDALibrary string
	Log         zerolog.Logger
}

// Activities holds the worker's shared resources; its methods are the activities.
type Activities struct {
	cfg Config
}

// New checks the configuration and prepares the work directory.
func New(cfg Config) (*Activities, error) {
	if cfg.Store == nil {
		return nil, errors.New("activities: Config.Store is required")
	}
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.NumCPU()
	}
	switch cfg.Device {
	case "":
		cfg.Device = "cpu"
	case "cpu", "cuda":
	default:
		return nil, fmt.Errorf("activities: Config.Device %q: want cpu or cuda", cfg.Device)
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(os.TempDir(), "evomerge-work")
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("activities: work dir: %w", err)
	}
	return &Activities{cfg: cfg}, nil
}

// Register adds every activity under its stable contract name.
func (a *Activities) Register(r worker.ActivityRegistry) {
	for name, fn := range map[string]any{
		workflows.ActivityMerge:       a.Merge,
		workflows.ActivityPublish:     a.Publish,
		workflows.ActivityDiversity:   a.Diversity,
		workflows.ActivityFinishedRun: FinishedRun,
		workflows.ActivityWriteReport: a.WriteReport,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	a.registerEngineActivities(r)
}

// badInput is a non-retryable error for input that can never succeed.
func badInput(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return temporal.NewNonRetryableApplicationError(msg, workflows.ErrTypeBadInput, nil)
}

// storeError classifies a store failure: a missing object is bad input (no
// retry brings it back), a corrupt one is typed so operators can see it,
// anything else (network, disk) is retried.
func storeError(what string, err error) error {
	var ce *store.CorruptError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return badInput("%s: %v", what, err)
	case errors.As(err, &ce):
		return temporal.NewApplicationErrorWithCause(fmt.Sprintf("%s: %v", what, err), workflows.ErrTypeCorrupt, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// fetchModel resolves a model reference to a verified local file.
func (a *Activities) fetchModel(ctx context.Context, field string, ref string) (*store.Local, error) {
	r, err := store.ParseRef(ref)
	if err != nil {
		return nil, badInput("%s: %v", field, err)
	}
	l, err := a.cfg.Store.Fetch(ctx, store.Models, r)
	if errors.Is(err, store.ErrNotFound) {
		return nil, badInput("%s: %s is not in the store %s", field, ref, a.cfg.Store)
	}
	if err != nil {
		return nil, storeError(field+" "+ref, err)
	}
	return l, nil
}

// memoKey derives an output key from an activity's identity and input: the
// same input always maps to the same key, and any field change to a new one.
func memoKey(kind string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("activities: key for %s: %w", kind, err)
	}
	h := sha256.Sum256(append([]byte(kind+"\x00"), b...))
	return hex.EncodeToString(h[:]), nil
}

// loadMemo reads a memoised output; ok is false when there is none (or it
// refers to a model the store no longer has, so the work must be redone).
func (a *Activities) loadMemo(ctx context.Context, name string, out any, models ...func(any) string) (bool, error) {
	data, err := a.cfg.Store.GetNamed(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		var ce *store.CorruptError
		if errors.As(err, &ce) {
			// A damaged memo only costs recomputation.
			return false, nil
		}
		return false, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return false, nil
	}
	for _, ref := range models {
		r, err := store.ParseRef(ref(out))
		if err != nil {
			return false, nil
		}
		if ok, err := a.cfg.Store.Has(ctx, store.Models, r); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (a *Activities) saveMemo(ctx context.Context, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.cfg.Store.PutNamed(ctx, name, b)
}

// scratch makes a private directory for one activity attempt.
func (a *Activities) scratch(prefix string) (string, func(), error) {
	dir, err := os.MkdirTemp(a.cfg.WorkDir, prefix+"-")
	if err != nil {
		return "", nil, fmt.Errorf("activities: scratch dir: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// info logs through the activity's SDK logger (the worker's zerolog, with
// workflow and activity IDs attached), or Config.Log outside an activity.
func (a *Activities) info(ctx context.Context, msg string, keyvals ...any) {
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Info(msg, keyvals...)
		return
	}
	a.cfg.Log.Info().Fields(keyvals).Msg(msg)
}

// heartbeat records progress when running inside an activity (tests call the
// methods directly too).
func heartbeat(ctx context.Context, details ...any) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details...)
	}
}

// heartbeatEvery is how often a running activity repeats its latest progress while it waits on something
// else (the store, a long evaluation): well inside any heartbeat timeout; the SDK throttles what it sends.
const heartbeatEvery = 2 * time.Second

// keepHeartbeating heartbeats details() every interval until the returned stop is called (the SDK's
// heartbeat is safe to call from another goroutine).
func keepHeartbeating(ctx context.Context, interval time.Duration, details func() any) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				heartbeat(ctx, details())
			}
		}
	}()
	return func() { close(done); <-finished }
}
