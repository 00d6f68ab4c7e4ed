// Package devserver runs a single-process Temporal server for development and
// tests: all four services in this process, SQLite persistence in one file (so
// a restart continues where it stopped), a namespace with EvoMerge's search
// attributes, and the Temporal web UI.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"

	"github.com/evomerge/evomerge/infra/devserver/ports"
	"github.com/evomerge/evomerge/workflows"
)

// Defaults match the Temporal CLI's dev server, so every tool finds it.
const (
	DefaultIP        = "127.0.0.1"
	DefaultPort      = 7233
	DefaultUIPort    = 8233
	DefaultNamespace = "default"
	DefaultDBPath    = ".evomerge/temporal.db"
)

// SearchAttributes are registered in the namespace on every start.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	workflows.SearchAttrRun:         enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	workflows.SearchAttrGeneration:  enumspb.INDEXED_VALUE_TYPE_INT,
	workflows.SearchAttrBestFitness: enumspb.INDEXED_VALUE_TYPE_DOUBLE,
	workflows.SearchAttrExperiment:  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// Options configure a server. Zero values take the defaults above.
type Options struct {
	// DBPath is the SQLite file; created with its schema on first start.
	DBPath string
	// Ephemeral keeps state in memory only (DBPath is ignored).
	Ephemeral bool
	IP        string
	Port      int // frontend gRPC
	UIPort    int
	NoUI      bool
	Namespace string
	// LogLevel of the server's own log: debug, info, warn (default) or error.
	LogLevel string
	// LogFile receives the server log; "" means stderr.
	LogFile string
	// Retention of closed workflows' histories (default 7 days).
	Retention time.Duration
}

// Server is a running dev server.
type Server struct {
	opts     Options
	temporal temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}
	stopOnce sync.Once
}

// FrontendAddr is the host:port clients and workers dial.
func (s *Server) FrontendAddr() string {
	return net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.Port))
}

// UIURL is the web UI's address, or "" without a UI.
func (s *Server) UIURL() string {
	if s.opts.NoUI {
		return ""
	}
	host := s.opts.IP
	if host == "127.0.0.1" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(s.opts.UIPort))
}

// Namespace is the namespace the server created.
func (s *Server) Namespace() string { return s.opts.Namespace }

func (o *Options) fill() {
	if o.DBPath == "" {
		o.DBPath = DefaultDBPath
	}
	if o.IP == "" {
		o.IP = DefaultIP
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.UIPort == 0 {
		o.UIPort = DefaultUIPort
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	if o.Retention == 0 {
		o.Retention = 7 * 24 * time.Hour
	}
}

// Start brings the server up and returns once the frontend answers and the
// namespace carries our search attributes.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts.fill()
	switch opts.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("devserver: LogLevel %q: want debug, info, warn or error", opts.LogLevel)
	}
	// The server and the UI exit the process when they cannot bind, so check
	// first and fail politely.
	if err := portFree(opts.IP, opts.Port); err != nil {
		return nil, fmt.Errorf("devserver: frontend port: %w", err)
	}
	if !opts.NoUI {
		if err := portFree(opts.IP, opts.UIPort); err != nil {
			return nil, fmt.Errorf("devserver: UI port: %w", err)
		}
	}

	sqlCfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{"mode": "rwc"},
		DatabaseName:      opts.DBPath,
	}
	if opts.Ephemeral {
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		sqlCfg.DatabaseName = fmt.Sprintf("evomerge-%d", time.Now().UnixNano())
	} else if err := ensureDatabase(sqlCfg, opts); err != nil {
		return nil, err
	}
	if opts.Ephemeral {
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			return nil, fmt.Errorf("devserver: schema: %w", err)
		}
		if err := createNamespace(sqlCfg, opts); err != nil {
			return nil, err
		}
	}

	cfg, err := serverConfig(sqlCfg, opts)
	if err != nil {
		return nil, err
	}
	logCfg := log.Config{Level: opts.LogLevel, Format: "console", OutputFile: opts.LogFile}
	logger := log.NewZapLogger(log.BuildZapLogger(logCfg))
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// Search attributes added at start are visible at once.
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("devserver: create server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("devserver: start server: %w", err)
	}
	s := &Server{opts: opts, temporal: srv}
	if err := s.registerSearchAttributes(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if !opts.NoUI {
		s.startUI()
		if err := waitHTTP(ctx, s.UIURL()); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// ensureDatabase creates the SQLite file with its schema and namespace on the
// first start. It is built under a temporary name and renamed into place, so a
// start killed half-way leaves no half-initialised database behind.
func ensureDatabase(sqlCfg *config.SQL, opts Options) error {
	if _, err := os.Stat(opts.DBPath); err == nil {
		// Existing database: only make sure the namespace exists.
		return createNamespace(sqlCfg, opts)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("devserver: database %s: %w", opts.DBPath, err)
	}
	if err := os.MkdirAll(filepath.Dir(opts.DBPath), 0o755); err != nil {
		return fmt.Errorf("devserver: database directory: %w", err)
	}
	tmp := opts.DBPath + ".init"
	os.Remove(tmp)
	tmpCfg := *sqlCfg
	tmpCfg.DatabaseName = tmp
	if err := sqliteschema.SetupSchema(&tmpCfg); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("devserver: schema in %s: %w", tmp, err)
	}
	if err := createNamespace(&tmpCfg, opts); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, opts.DBPath); err != nil {
		return fmt.Errorf("devserver: %w", err)
	}
	return nil
}

func createNamespace(sqlCfg *config.SQL, opts Options) error {
	ns, err := sqliteschema.NewNamespaceConfig("active", opts.Namespace, false, SearchAttributes)
	if err != nil {
		return fmt.Errorf("devserver: namespace %q: %w", opts.Namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(opts.Retention)
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return fmt.Errorf("devserver: namespace %q: %w", opts.Namespace, err)
	}
	return nil
}

func serverConfig(sqlCfg *config.SQL, opts Options) (*config.Config, error) {
	frontend := fmt.Sprintf("%s:%d", opts.IP, opts.Port)
	services, err := servicePorts(opts)
	if err != nil {
		return nil, err
	}
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	return &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: opts.IP},
			Metrics: &metrics.Config{Prometheus: &metrics.PrometheusConfig{
				ListenAddress: fmt.Sprintf("%s:%d", opts.IP, metricsPort),
				HandlerPath:   "/metrics",
			}},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        "active",
			CurrentClusterName:       "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            services,
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		// The server's internal worker (schedules, batch) dials this.
		PublicClient: config.PublicClient{HostPort: frontend},
	}, nil
}

// registerSearchAttributes waits for the frontend, then adds any of our
// search attributes missing from the namespace (a database made by an older
// version, or by another tool).
func (s *Server) registerSearchAttributes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var c client.Client
	var err error
	for {
		c, err = client.DialContext(ctx, client.Options{
			HostPort:  s.FrontendAddr(),
			Namespace: s.opts.Namespace,
			Logger:    sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver: frontend %s did not answer: %w", s.FrontendAddr(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer c.Close()
	for {
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.opts.Namespace})
		if err == nil {
			missing := map[string]enumspb.IndexedValueType{}
			for name, typ := range SearchAttributes {
				have, ok := resp.CustomAttributes[name]
				if ok && have != typ {
					return fmt.Errorf("devserver: search attribute %s exists with type %s, want %s", name, have, typ)
				}
				if !ok {
					missing[name] = typ
				}
			}
			if len(missing) == 0 {
				return nil
			}
			_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
				Namespace: s.opts.Namespace, SearchAttributes: missing,
			})
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver: register search attributes: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) startUI() {
	cfg := &uiconfig.Config{
		TemporalGRPCAddress: s.FrontendAddr(),
		Host:                s.opts.IP,
		Port:                s.opts.UIPort,
		EnableUI:            true,
		DefaultNamespace:    s.opts.Namespace,
		HideLogs:            true,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		DisableNewsFetch:    true, // no internet needed
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(cfg))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = s.ui.Start()
	}()
}

func waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver: web UI at %s did not answer: %w", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop shuts the UI and the server down. Everything durable is already in the
// SQLite file.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		_ = s.temporal.Stop()
	})
}

func portFree(ip string, port int) error { return ports.Free(ip, port) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePort returns a loopback port for a test's server: nothing listens on it, nor on the service ports
// derived from it (servicePorts), and it lies below the ephemeral range (ports.FreePort).
func FreePort() (int, error) { return ports.FreePort() }

// serviceNames are the server's services in the order their ports are derived from the frontend port.
var serviceNames = ports.Services

// servicePorts gives each service its gRPC and membership ports. They are derived from the frontend port
// (gRPC: port+i, membership: port+100+i) so that a server restarted on the same database, after a crash
// too, has the same member addresses as the one before: random ports leave the dead server's members in
// the membership table, and the new one then waits for them ("Not enough hosts") or fails to join. If a
// derived port is taken, every service falls back to free random ports.
func servicePorts(opts Options) (map[string]config.Service, error) {
	services := map[string]config.Service{}
	derived := true
	for i := range serviceNames {
		for _, p := range []int{opts.Port + i, opts.Port + ports.MembershipOffset + i} {
			if p == opts.Port {
				continue // the frontend port is checked (and required) by Start
			}
			if p > 65535 || portFree(opts.IP, p) != nil {
				derived = false
			}
		}
	}
	for i, name := range serviceNames {
		grpc, member := opts.Port+i, opts.Port+ports.MembershipOffset+i
		if !derived {
			var err error
			if member, err = freePort(); err != nil {
				return nil, fmt.Errorf("devserver: ports for %s: %w", name, err)
			}
			if i > 0 {
				if grpc, err = freePort(); err != nil {
					return nil, fmt.Errorf("devserver: ports for %s: %w", name, err)
				}
			}
		}
		services[name] = config.Service{RPC: config.RPC{GRPCPort: grpc, MembershipPort: member, BindOnIP: opts.IP}}
	}
	return services, nil
}
