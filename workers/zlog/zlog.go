// Package zlog sets up EvoMerge's process logging on zerolog: human-readable
// console output in a terminal, JSON lines otherwise, and an adapter so the
// Temporal SDK logs through the same logger.
package zlog

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	sdklog "go.temporal.io/sdk/log"
	"golang.org/x/term"
)

// Format selects the output encoding: "auto" (console on a terminal, JSON
// otherwise), "console" or "json".
func New(w *os.File, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	var out io.Writer = w
	switch format {
	case "auto", "":
		if term.IsTerminal(int(w.Fd())) {
			out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
		}
	case "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !term.IsTerminal(int(w.Fd()))}
	case "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("log format %q: want auto, console or json", format)
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}

// SDK adapts a zerolog logger to the Temporal SDK's logger interface.
type SDK struct{ L zerolog.Logger }

var (
	_ sdklog.Logger     = SDK{}
	_ sdklog.WithLogger = SDK{}
)

func (s SDK) Debug(msg string, keyvals ...any) { s.emit(s.L.Debug(), msg, keyvals) }
func (s SDK) Info(msg string, keyvals ...any)  { s.emit(s.L.Info(), msg, keyvals) }
func (s SDK) Warn(msg string, keyvals ...any)  { s.emit(s.L.Warn(), msg, keyvals) }
func (s SDK) Error(msg string, keyvals ...any) { s.emit(s.L.Error(), msg, keyvals) }

// With returns a logger that adds keyvals to every entry.
func (s SDK) With(keyvals ...any) sdklog.Logger {
	return SDK{L: s.L.With().Fields(pairs(keyvals)).Logger()}
}

func (s SDK) emit(e *zerolog.Event, msg string, keyvals []any) {
	e.Fields(pairs(keyvals)).Msg(msg)
}

// pairs turns the SDK's alternating key/value list into fields; a dangling
// or non-string key is kept rather than dropped.
func pairs(keyvals []any) map[string]any {
	m := make(map[string]any, (len(keyvals)+1)/2)
	for i := 0; i < len(keyvals); i += 2 {
		k, ok := keyvals[i].(string)
		if !ok {
			k = fmt.Sprint(keyvals[i])
		}
		if i+1 < len(keyvals) {
			m[k] = keyvals[i+1]
		} else {
			m[k] = "(missing value)"
		}
	}
	return m
}
