// Command evomerge-server runs the embedded Temporal dev server (SQLite file
// persistence, the default namespace with EvoMerge's search attributes, and
// the web UI) as its own process, so it can be stopped or killed and restarted
// on the same database while workers keep going.
//
//	go run ./infra/evomerge-server --db .evomerge/temporal.db
//
// It prints one "ready" line on stdout once clients can connect.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/evomerge/evomerge/infra/devserver"
)

func main() {
	var o devserver.Options
	fs := flag.NewFlagSet("evomerge-server", flag.ContinueOnError)
	fs.StringVar(&o.DBPath, "db", devserver.DefaultDBPath, "SQLite database file (created on first start)")
	fs.BoolVar(&o.Ephemeral, "ephemeral", false, "keep state in memory only")
	fs.StringVar(&o.IP, "ip", devserver.DefaultIP, "address to bind")
	fs.IntVar(&o.Port, "port", devserver.DefaultPort, "frontend gRPC port")
	fs.IntVar(&o.UIPort, "ui-port", devserver.DefaultUIPort, "web UI port")
	fs.BoolVar(&o.NoUI, "headless", false, "do not serve the web UI")
	fs.StringVar(&o.Namespace, "namespace", devserver.DefaultNamespace, "namespace to create")
	fs.StringVar(&o.LogLevel, "log-level", "warn", "server log level: debug, info, warn, error")
	fs.StringVar(&o.LogFile, "log-file", "", "write the server log here instead of stderr")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "evomerge-server: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := devserver.Start(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "evomerge-server:", err)
		os.Exit(1)
	}
	ui := s.UIURL()
	if ui == "" {
		ui = "off"
	}
	fmt.Printf("evomerge-server ready frontend=%s namespace=%s ui=%s\n", s.FrontendAddr(), s.Namespace(), ui)
	<-ctx.Done()
	s.Stop()
}
