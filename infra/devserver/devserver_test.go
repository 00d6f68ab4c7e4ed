package devserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func greet(ctx workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

func start(t *testing.T, db string) *Server {
	t.Helper()
	port, err := FreePort()
	require.NoError(t, err)
	uiPort, err := FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{DBPath: db, Port: port, UIPort: uiPort, LogLevel: "warn", LogFile: filepath.Join(t.TempDir(), "server.log")})
	require.NoError(t, err)
	return s
}

func dial(t *testing.T, s *Server) client.Client {
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddr(), Namespace: s.Namespace()})
	require.NoError(t, err)
	return c
}

func TestRunRestartAndHistorySurvives(t *testing.T) {
	db := filepath.Join(t.TempDir(), "temporal.db")
	s := start(t, db)

	// Web UI answers with its page.
	resp, err := http.Get(s.UIURL())
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, strings.ToLower(string(body)), "<html")

	c := dial(t, s)
	ctx := context.Background()
	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.Namespace()})
	require.NoError(t, err)
	for name, typ := range SearchAttributes {
		require.Equal(t, typ, sa.CustomAttributes[name], name)
	}

	w := worker.New(c, "devserver-test", worker.Options{})
	w.RegisterWorkflowWithOptions(greet, workflow.RegisterOptions{Name: "Greet"})
	require.NoError(t, w.Start())
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "greet-1", TaskQueue: "devserver-test",
		TypedSearchAttributes: temporalSA("demo"),
	}, "Greet", "evomerge")
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	require.Equal(t, "hello evomerge", out)
	w.Stop()
	c.Close()
	s.Stop()

	// Same file, new ports: the finished run and its history are still there.
	s2 := start(t, db)
	defer s2.Stop()
	c2 := dial(t, s2)
	defer c2.Close()
	desc, err := c2.DescribeWorkflowExecution(ctx, "greet-1", "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status)
	require.NoError(t, c2.GetWorkflow(ctx, "greet-1", "").Get(ctx, &out))
	require.Equal(t, "hello evomerge", out)
	it := c2.GetWorkflowHistory(ctx, "greet-1", "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	events := 0
	for it.HasNext() {
		_, err := it.Next()
		require.NoError(t, err)
		events++
	}
	require.GreaterOrEqual(t, events, 5)
	// Visibility (SQLite too) finds it by our search attribute.
	require.Eventually(t, func() bool {
		resp, err := c2.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `EvoRun = "demo"`})
		return err == nil && len(resp.Executions) == 1
	}, 10*time.Second, 100*time.Millisecond)
}

func TestStartRejectsBusyPortAndBadLevel(t *testing.T) {
	_, err := Start(context.Background(), Options{Ephemeral: true, LogLevel: "loud"})
	require.ErrorContains(t, err, `LogLevel "loud"`)

	l, port := listen(t)
	defer l.Close()
	_, err = Start(context.Background(), Options{Ephemeral: true, Port: port, NoUI: true})
	require.ErrorContains(t, err, "frontend port")
}

func temporalSA(run string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword("EvoRun").ValueSet(run))
}

func listen(t *testing.T) (net.Listener, int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return l, l.Addr().(*net.TCPAddr).Port
}
