// Package temporalconn is how the worker and the starter reach Temporal: the
// connection flags (address, namespace, TLS, mTLS, API key), each falling back
// to its TEMPORAL_* environment variable, turned into SDK client options. The
// one place both processes take these settings from.
package temporalconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
)

// Settings are the connection settings.
type Settings struct {
	Address       string
	Namespace     string
	APIKey        string
	TLS           bool // TLS without client certificates (implied by any of the others)
	TLSCert       string
	TLSKey        string
	TLSCA         string
	TLSServerName string
}

// Register adds the connection flags to fs, writing into s; a flag not given
// takes its environment variable (read with getenv), else its default.
func (s *Settings) Register(fs *flag.FlagSet, getenv func(string) string) {
	str := func(p *string, name, env, def, usage string) {
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage+" [$"+env+"]")
	}
	str(&s.Address, "address", "TEMPORAL_ADDRESS", "localhost:7233", "Temporal frontend host:port")
	str(&s.Namespace, "namespace", "TEMPORAL_NAMESPACE", "default", "Temporal namespace")
	str(&s.APIKey, "api-key", "TEMPORAL_API_KEY", "", "API key (Temporal Cloud); implies TLS")
	str(&s.TLSCert, "tls-cert", "TEMPORAL_TLS_CERT", "", "client certificate PEM file (mTLS)")
	str(&s.TLSKey, "tls-key", "TEMPORAL_TLS_KEY", "", "client key PEM file (mTLS)")
	str(&s.TLSCA, "tls-ca", "TEMPORAL_TLS_CA", "", "CA certificate PEM file to verify the server")
	str(&s.TLSServerName, "tls-server-name", "TEMPORAL_TLS_SERVER_NAME", "", "server name to verify (default: from address)")
	s.TLS, _ = strconv.ParseBool(getenv("TEMPORAL_TLS"))
	fs.Func("tls", "use TLS without client certificates (true or false) [$TEMPORAL_TLS]", func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		s.TLS = b
		return nil
	})
}

// Check names the flag of a setting that cannot work.
func (s Settings) Check() error {
	switch {
	case s.Address == "":
		return errors.New("--address: empty")
	case s.Namespace == "":
		return errors.New("--namespace: empty")
	case (s.TLSCert == "") != (s.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key: give both or neither")
	}
	return nil
}

// ClientOptions are the SDK options of the settings (logger: the caller's,
// nil for the SDK's default).
func (s Settings) ClientOptions(logger log.Logger) (client.Options, error) {
	opts := client.Options{HostPort: s.Address, Namespace: s.Namespace, Logger: logger}
	if err := s.Check(); err != nil {
		return opts, err
	}
	if s.TLS || s.APIKey != "" || s.TLSCert != "" || s.TLSCA != "" || s.TLSServerName != "" {
		tc := &tls.Config{ServerName: s.TLSServerName, MinVersion: tls.VersionTLS12}
		if s.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
			if err != nil {
				return opts, fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if s.TLSCA != "" {
			pem, err := os.ReadFile(s.TLSCA)
			if err != nil {
				return opts, fmt.Errorf("--tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("--tls-ca: %s holds no PEM certificate", s.TLSCA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	if s.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(s.APIKey)
	}
	return opts, nil
}

// Dial connects with the settings.
func (s Settings) Dial(ctx context.Context, logger log.Logger) (client.Client, error) {
	opts, err := s.ClientOptions(logger)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", s.Address, s.Namespace, err)
	}
	return c, nil
}
