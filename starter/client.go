package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"

	"go.temporal.io/sdk/client"
)

// clientFlags are how the starter reaches Temporal: a local dev server, a
// self-hosted cluster with mTLS, or Temporal Cloud with an API key.
type clientFlags struct {
	address, namespace     string
	tlsCert, tlsKey, tlsCA string
	tlsServerName          string
	apiKey                 string
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.address, "address", envOr("TEMPORAL_ADDRESS", "localhost:7233"), "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVar(&c.namespace, "namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	fs.StringVar(&c.tlsCert, "tls-cert", os.Getenv("TEMPORAL_TLS_CERT"), "client certificate PEM for mTLS (env TEMPORAL_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", os.Getenv("TEMPORAL_TLS_KEY"), "client key PEM for mTLS (env TEMPORAL_TLS_KEY)")
	fs.StringVar(&c.tlsCA, "tls-ca", os.Getenv("TEMPORAL_TLS_CA"), "CA bundle PEM to verify the server (env TEMPORAL_TLS_CA)")
	fs.StringVar(&c.tlsServerName, "tls-server-name", os.Getenv("TEMPORAL_TLS_SERVER_NAME"), "server name to verify (env TEMPORAL_TLS_SERVER_NAME)")
	fs.StringVar(&c.apiKey, "api-key", os.Getenv("TEMPORAL_API_KEY"), "API key, e.g. for Temporal Cloud (env TEMPORAL_API_KEY)")
}

func (c *clientFlags) options() (client.Options, error) {
	opts := client.Options{HostPort: c.address, Namespace: c.namespace, Logger: quietLogger{}}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return opts, fmt.Errorf("--tls-cert and --tls-key must be given together")
	}
	var tc *tls.Config
	if c.tlsCert != "" || c.tlsCA != "" || c.apiKey != "" || c.tlsServerName != "" {
		tc = &tls.Config{ServerName: c.tlsServerName, MinVersion: tls.VersionTLS12}
	}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return opts, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return opts, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return opts, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.tlsCA)
		}
		tc.RootCAs = pool
	}
	opts.ConnectionOptions.TLS = tc
	if c.apiKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.apiKey)
	}
	return opts, nil
}

func (c *clientFlags) dial(ctx context.Context) (client.Client, error) {
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", c.address, c.namespace, err)
	}
	return cl, nil
}

// quietLogger keeps the SDK's client chatter out of a CLI's output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
