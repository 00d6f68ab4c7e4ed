package main

import (
	"context"
	"flag"
	"os"

	"go.temporal.io/sdk/client"

	"github.com/evomerge/evomerge/temporalconn"
)

// clientFlags are how the starter reaches Temporal (a local dev server, a
// self-hosted cluster with mTLS, or Temporal Cloud with an API key): the
// connection settings the worker takes too, from flags or TEMPORAL_*.
type clientFlags struct{ temporalconn.Settings }

func (c *clientFlags) register(fs *flag.FlagSet) { c.Settings.Register(fs, os.Getenv) }

func (c *clientFlags) dial(ctx context.Context) (client.Client, error) {
	return c.Settings.Dial(ctx, quietLogger{})
}

// quietLogger keeps the SDK's client chatter out of a CLI's output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
