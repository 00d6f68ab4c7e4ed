package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/evomerge/evomerge/temporalconn"
	"github.com/evomerge/evomerge/workers/pool"
)

// config is everything the worker process is told, from flags or, when a
// flag is not given, from its environment variable.
type config struct {
	temporalconn.Settings // how to reach Temporal (shared with the starter)

	Queues    []pool.Queue
	Workflows bool

	Store      string
	S3Endpoint string
	CacheDir   string
	CacheLimit int64
	WorkDir    string
	// Device, CUDALibrary and Threads go to the engines (activities.Config).
	Device      string
	CUDALibrary string
	Threads     int

	LogLevel  string
	LogFormat string
}

type flagSpec struct {
	name, env, def, usage string
}

// oldEnv: variables renamed so one thing has one name, by new name; the old
// one is still read when the new one is not set.
var oldEnv = map[string]string{"EVOMERGE_DEVICE": "EVOMERGE_BACKEND"}

var flagSpecs = []flagSpec{
	{"queues", "EVOMERGE_QUEUES", "cpu=4,gpu=1", "task queues to poll and activities of each at once"},
	{"workflows", "EVOMERGE_WORKFLOWS", "true", "also run workflow tasks of the polled queues"},
	{"store", "EVOMERGE_STORE", "file://./.evomerge/store", "artifact store URL (file://DIR or s3://bucket/prefix?endpoint=URL)"},
	{"s3-endpoint", "EVOMERGE_S3_ENDPOINT", "", "S3 endpoint for an s3:// store whose URL names none"},
	{"cache-dir", "EVOMERGE_CACHE_DIR", ".evomerge/cache", "local cache of remote store objects"},
	{"cache-limit", "EVOMERGE_CACHE_LIMIT", "8GiB", "cache size limit (bytes, or with KiB/MiB/GiB/TiB)"},
	{"work-dir", "EVOMERGE_WORK_DIR", "", "scratch directory (default: system temp)"},
	{"device", "EVOMERGE_DEVICE", "cpu", "compute device: cpu or cuda (models load and fine-tunes train there)"},
	{"cuda-library", "EVOMERGE_CUDA_LIB", "", "libggml-cuda.so for --backend cuda (see infra/build-cuda.sh)"},
	{"threads", "EVOMERGE_THREADS", strconv.Itoa(runtime.NumCPU()), "compute threads (ggml busy-waits: at most the free cores)"},
	{"log-level", "EVOMERGE_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"log-format", "EVOMERGE_LOG_FORMAT", "auto", "auto (console on a terminal, JSON otherwise), console or json"},
}

// parseConfig reads flags, falling back to the environment, then to defaults.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	fs := flag.NewFlagSet("workers", flag.ContinueOnError)
	fs.SetOutput(usage)
	var c config
	c.Settings.Register(fs, getenv)
	vals := map[string]*string{}
	for _, f := range flagSpecs {
		def := f.def
		if v := getenv(oldEnv[f.env]); oldEnv[f.env] != "" && v != "" {
			def = v
		}
		if v := getenv(f.env); v != "" {
			def = v
		}
		vals[f.name] = fs.String(f.name, def, f.usage+" [$"+f.env+"]")
	}
	// --backend is --device's name before the rename.
	fs.Func("backend", "old name of --device", func(v string) error { *vals["device"] = v; return nil })
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	get := func(name string) string { return strings.TrimSpace(*vals[name]) }
	boolean := func(name string) (bool, error) {
		b, err := strconv.ParseBool(get(name))
		if err != nil {
			return false, fmt.Errorf("--%s: %q is not true or false", name, get(name))
		}
		return b, nil
	}
	c.Store, c.S3Endpoint, c.CacheDir, c.WorkDir = get("store"), get("s3-endpoint"), get("cache-dir"), get("work-dir")
	c.Device, c.CUDALibrary = get("device"), get("cuda-library")
	c.LogLevel, c.LogFormat = get("log-level"), get("log-format")
	var err error
	if c.Workflows, err = boolean("workflows"); err != nil {
		return c, err
	}
	if c.Queues, err = pool.ParseQueues(get("queues")); err != nil {
		return c, fmt.Errorf("--%w", err)
	}
	if c.CacheLimit, err = parseBytes(get("cache-limit")); err != nil {
		return c, fmt.Errorf("--cache-limit: %w", err)
	}
	if c.Threads, err = strconv.Atoi(get("threads")); err != nil || c.Threads < 1 {
		return c, fmt.Errorf("--threads: %q is not a positive integer", get("threads"))
	}
	switch c.Device {
	case "cpu":
	case "cuda":
		if c.CUDALibrary == "" {
			return c, errors.New("--cuda-library: required with --device cuda (build it with infra/build-cuda.sh)")
		}
	default:
		return c, fmt.Errorf("--device: %q, want cpu or cuda", c.Device)
	}
	return c, c.Settings.Check()
}

// parseBytes reads "1024", "512MiB", "8GiB" (also KB/MB/GB as powers of 1000).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 8GiB)", s)
	}
	return n * mult, nil
}

// clientOptions are the SDK options of the connection settings.
func (c config) clientOptions() (client.Options, error) { return c.Settings.ClientOptions(nil) }
