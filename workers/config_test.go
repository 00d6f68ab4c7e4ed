package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/workers/pool"
	"github.com/evomerge/evomerge/workers/zlog"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsEnvAndFlags(t *testing.T) {
	c, err := parseConfig(nil, env(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "localhost:7233", c.Address)
	require.Equal(t, "default", c.Namespace)
	require.Equal(t, []pool.Queue{{Name: "cpu", Concurrency: 4}, {Name: "gpu", Concurrency: 1}}, c.Queues)
	require.True(t, c.Workflows)
	require.Equal(t, int64(8<<30), c.CacheLimit)

	// The environment fills what flags do not give; flags win.
	c, err = parseConfig([]string{"--namespace", "prod", "--queues", "gpu=2"},
		env(map[string]string{"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "staging", "EVOMERGE_CACHE_LIMIT": "512MiB", "EVOMERGE_WORKFLOWS": "false"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "temporal:7233", c.Address)
	require.Equal(t, "prod", c.Namespace)
	require.Equal(t, []pool.Queue{{Name: "gpu", Concurrency: 2}}, c.Queues)
	require.Equal(t, int64(512<<20), c.CacheLimit)
	require.False(t, c.Workflows)
}

func TestBadSettingsNameTheFlag(t *testing.T) {
	for want, args := range map[string][]string{
		"--queues":                 {"--queues", "cpu=0"},
		"listed twice":             {"--queues", "cpu,cpu=2"},
		"--cache-limit":            {"--cache-limit", "lots"},
		"--threads":                {"--threads", "-1"},
		"--device":                 {"--device", "tpu"},
		"--device: \"npu\"":        {"--backend", "npu"}, // the old name still works
		"--tls-cert and --tls-key": {"--tls-cert", "c.pem"},
		"--workflows":              {"--workflows", "maybe"},
		"unexpected argument":      {"extra"},
	} {
		_, err := parseConfig(args, env(nil), io.Discard)
		require.Error(t, err, "%v", args)
		require.Contains(t, err.Error(), want, "%v", args)
	}
}

func TestClientOptionsTLSAndAPIKey(t *testing.T) {
	c, err := parseConfig([]string{"--api-key", "k"}, env(nil), io.Discard)
	require.NoError(t, err)
	o, err := c.clientOptions()
	require.NoError(t, err)
	require.NotNil(t, o.ConnectionOptions.TLS, "an API key implies TLS")
	require.NotNil(t, o.Credentials)

	c, err = parseConfig(nil, env(nil), io.Discard)
	require.NoError(t, err)
	o, err = c.clientOptions()
	require.NoError(t, err)
	require.Nil(t, o.ConnectionOptions.TLS)

	bad := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not pem"), 0o644))
	c, err = parseConfig([]string{"--tls-ca", bad}, env(nil), io.Discard)
	require.NoError(t, err)
	_, err = c.clientOptions()
	require.ErrorContains(t, err, "--tls-ca")
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "1024": 1024, "2KiB": 2048, "3GiB": 3 << 30, "5MB": 5e6, "7 MiB": 7 << 20} {
		got, err := parseBytes(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "x", "-1", "1.5GiB", "99999999999TiB"} {
		_, err := parseBytes(s)
		require.Error(t, err, s)
	}
}

func TestSDKLoggerWritesJSONFields(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	l, err := zlog.New(w, "info", "json")
	require.NoError(t, err)
	sdk := zlog.SDK{L: l}
	sdk.With("WorkflowID", "wf-1").Info("started", "Attempt", 2, "dangling")
	sdk.Debug("hidden at info level")
	w.Close()
	var buf bytes.Buffer
	io.Copy(&buf, r)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1)
	var entry map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &entry))
	require.Equal(t, "started", entry["message"])
	require.Equal(t, "wf-1", entry["WorkflowID"])
	require.Equal(t, float64(2), entry["Attempt"])
	require.Equal(t, "(missing value)", entry["dangling"])

	_, err = zlog.New(os.Stderr, "chatty", "json")
	require.ErrorContains(t, err, "log level")
	_, err = zlog.New(os.Stderr, "info", "xml")
	require.ErrorContains(t, err, "log format")
}
