package temporalconn

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, args []string, env map[string]string) (Settings, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var s Settings
	s.Register(fs, func(k string) string { return env[k] })
	return s, fs.Parse(args)
}

func TestFlagsEnvAndDefaults(t *testing.T) {
	s, err := parse(t, nil, nil)
	require.NoError(t, err)
	require.Equal(t, Settings{Address: "localhost:7233", Namespace: "default"}, s)
	o, err := s.ClientOptions(nil)
	require.NoError(t, err)
	require.Nil(t, o.ConnectionOptions.TLS)

	s, err = parse(t, []string{"--namespace", "prod"}, map[string]string{"TEMPORAL_ADDRESS": "t:7233", "TEMPORAL_NAMESPACE": "staging", "TEMPORAL_TLS": "true"})
	require.NoError(t, err)
	require.Equal(t, "t:7233", s.Address)
	require.Equal(t, "prod", s.Namespace, "a flag wins over its variable")
	o, err = s.ClientOptions(nil)
	require.NoError(t, err)
	require.NotNil(t, o.ConnectionOptions.TLS)

	s, err = parse(t, []string{"--api-key", "k"}, nil)
	require.NoError(t, err)
	o, err = s.ClientOptions(nil)
	require.NoError(t, err)
	require.NotNil(t, o.ConnectionOptions.TLS, "an API key implies TLS")
	require.NotNil(t, o.Credentials)
}

func TestBadSettingsNameTheFlag(t *testing.T) {
	_, err := parse(t, []string{"--tls", "maybe"}, nil)
	require.ErrorContains(t, err, "tls")
	s, _ := parse(t, []string{"--tls-cert", "c.pem"}, nil)
	_, err = s.ClientOptions(nil)
	require.ErrorContains(t, err, "--tls-cert and --tls-key")
	bad := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not pem"), 0o644))
	s, _ = parse(t, []string{"--tls-ca", bad}, nil)
	_, err = s.ClientOptions(nil)
	require.ErrorContains(t, err, "--tls-ca")
	s, _ = parse(t, []string{"--address", ""}, nil)
	require.ErrorContains(t, s.Check(), "--address")
}
