package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/evomerge/evomerge/workers/pool"
)

// config is everything the worker process is told, from flags or, when a
// flag is not given, from its environment variable.
type config struct {
	Address       string
	Namespace     string
	APIKey        string
	TLS           bool
	TLSCert       string
	TLSKey        string
	TLSCA         string
	TLSServerName string

	Queues    []pool.Queue
	Workflows bool

	Store      string
	S3Endpoint string
	CacheDir   string
	CacheLimit int64
	WorkDir    string
	Backend    string
	CUDALib    string
	Threads    int

	LogLevel  string
	LogFormat string
}

type flagSpec struct {
	name, env, def, usage string
}

var flagSpecs = []flagSpec{
	{"address", "TEMPORAL_ADDRESS", "localhost:7233", "Temporal frontend host:port"},
	{"namespace", "TEMPORAL_NAMESPACE", "default", "Temporal namespace"},
	{"api-key", "TEMPORAL_API_KEY", "", "API key (Temporal Cloud); implies TLS"},
	{"tls", "TEMPORAL_TLS", "false", "use TLS without client certificates"},
	{"tls-cert", "TEMPORAL_TLS_CERT", "", "client certificate file (mTLS)"},
	{"tls-key", "TEMPORAL_TLS_KEY", "", "client key file (mTLS)"},
	{"tls-ca", "TEMPORAL_TLS_CA", "", "CA certificate file to verify the server"},
	{"tls-server-name", "TEMPORAL_TLS_SERVER_NAME", "", "server name to verify (default: from address)"},
	{"queues", "EVOMERGE_QUEUES", "cpu=4,gpu=1", "task queues to poll and activities of each at once"},
	{"workflows", "EVOMERGE_WORKFLOWS", "true", "also run workflow tasks of the polled queues"},
	{"store", "EVOMERGE_STORE", "file://./.evomerge/store", "artifact store URL (file://DIR or s3://bucket/prefix?endpoint=URL)"},
	{"s3-endpoint", "EVOMERGE_S3_ENDPOINT", "", "S3 endpoint for an s3:// store whose URL names none"},
	{"cache-dir", "EVOMERGE_CACHE_DIR", ".evomerge/cache", "local cache of remote store objects"},
	{"cache-limit", "EVOMERGE_CACHE_LIMIT", "8GiB", "cache size limit (bytes, or with KiB/MiB/GiB/TiB)"},
	{"work-dir", "EVOMERGE_WORK_DIR", "", "scratch directory (default: system temp)"},
	{"backend", "EVOMERGE_BACKEND", "cpu", "compute backend: cpu or cuda"},
	{"cuda-library", "EVOMERGE_CUDA_LIB", "", "libggml-cuda.so for --backend cuda (see infra/build-cuda.sh)"},
	{"threads", "EVOMERGE_THREADS", strconv.Itoa(runtime.NumCPU()), "compute threads (ggml busy-waits: at most the free cores)"},
	{"log-level", "EVOMERGE_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"log-format", "EVOMERGE_LOG_FORMAT", "auto", "auto (console on a terminal, JSON otherwise), console or json"},
}

// parseConfig reads flags, falling back to the environment, then to defaults.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	fs := flag.NewFlagSet("workers", flag.ContinueOnError)
	fs.SetOutput(usage)
	vals := map[string]*string{}
	for _, f := range flagSpecs {
		def := f.def
		if v := getenv(f.env); v != "" {
			def = v
		}
		vals[f.name] = fs.String(f.name, def, f.usage+" [$"+f.env+"]")
	}
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
	c := config{
		Address: get("address"), Namespace: get("namespace"), APIKey: get("api-key"),
		TLSCert: get("tls-cert"), TLSKey: get("tls-key"), TLSCA: get("tls-ca"), TLSServerName: get("tls-server-name"),
		Store: get("store"), S3Endpoint: get("s3-endpoint"), CacheDir: get("cache-dir"), WorkDir: get("work-dir"), Backend: get("backend"), CUDALib: get("cuda-library"),
		LogLevel: get("log-level"), LogFormat: get("log-format"),
	}
	var err error
	if c.TLS, err = boolean("tls"); err != nil {
		return c, err
	}
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
	switch c.Backend {
	case "cpu":
	case "cuda":
		if c.CUDALib == "" {
			return c, errors.New("--cuda-library: required with --backend cuda (build it with infra/build-cuda.sh)")
		}
	default:
		return c, fmt.Errorf("--backend: %q, want cpu or cuda", c.Backend)
	}
	if c.Address == "" {
		return c, errors.New("--address: empty")
	}
	if c.Namespace == "" {
		return c, errors.New("--namespace: empty")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("--tls-cert and --tls-key: give both or neither")
	}
	return c, nil
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

// clientOptions turns the connection settings into SDK options.
func (c config) clientOptions() (client.Options, error) {
	opts := client.Options{HostPort: c.Address, Namespace: c.Namespace}
	useTLS := c.TLS || c.APIKey != "" || c.TLSCert != "" || c.TLSCA != ""
	if useTLS {
		tc := &tls.Config{ServerName: c.TLSServerName, MinVersion: tls.VersionTLS12}
		if c.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				return opts, fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if c.TLSCA != "" {
			pem, err := os.ReadFile(c.TLSCA)
			if err != nil {
				return opts, fmt.Errorf("--tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.TLSCA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	if c.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.APIKey)
	}
	return opts, nil
}
