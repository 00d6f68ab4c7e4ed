// Package s3test runs a real S3 server (versitygw with its POSIX backend) on
// loopback for tests and local multi-process setups. The binary is built once
// from the Go module proxy, outside this module, and cached.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the helper builds.
const Version = "v1.8.0"

const (
	AccessKey = "evomerge-test"
	SecretKey = "evomerge-test-secret"
	Bucket    = "evomerge"
)

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// Binary returns the path of a versitygw executable: $EVOMERGE_VERSITYGW, or
// the cached build under the user cache dir, building it there on first use.
func Binary() (string, error) {
	buildOnce.Do(func() { buildOnce.path, buildOnce.err = findOrBuild() })
	return buildOnce.path, buildOnce.err
}

func findOrBuild() (string, error) {
	if p := os.Getenv("EVOMERGE_VERSITYGW"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(home, ".cache", "evomerge", "bin")
	path := filepath.Join(bin, "versitygw")
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return path, nil
	}
	// Build into a private directory then rename, so a concurrent build in
	// another test process never sees a half-written binary.
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(bin, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", "github.com/versity/versitygw/cmd/versitygw@"+Version)
	cmd.Dir = tmp // outside any module: our go.mod is not touched
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("s3test: go install versitygw@%s: %v\n%s", Version, err, out.String())
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), path); err != nil {
		return "", err
	}
	return path, nil
}

// Server is a running versitygw process with one bucket.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the POSIX backend's root
	cmd      *exec.Cmd
	done     chan error
}

// StoreURL is an evomerge store URL for a prefix in the server's bucket.
func (s *Server) StoreURL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s", Bucket, prefix, s.Endpoint)
}

// Env is the environment a separate process needs to reach the server through
// the SDK's standard credential chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
}

// Run starts a server whose data lives in dir, on a free loopback port, and
// creates the bucket. logw receives its output (nil discards it).
func Run(ctx context.Context, dir string, logw io.Writer) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if logw == nil {
		logw = io.Discard
	}
	cmd := exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", addr, "posix", dir)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("s3test: start versitygw: %w", err)
	}
	s := &Server{Endpoint: "http://" + addr, Dir: dir, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	if err := s.createBucket(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) createBucket(ctx context.Context) error {
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(Bucket)})
		if err == nil || strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") || strings.Contains(err.Error(), "BucketAlreadyExists") {
			return nil
		}
		select {
		case werr := <-s.done:
			return fmt.Errorf("s3test: versitygw exited before serving: %v", werr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("s3test: create bucket on %s: %w", s.Endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the server process.
func (s *Server) Stop() error {
	if s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return errors.New("s3test: versitygw did not exit")
	}
	return nil
}

// Start runs a server for one test, points the SDK's credential chain at it
// through the environment, and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Run(context.Background(), t.TempDir(), &testWriter{t: t})
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return s
}

type testWriter struct {
	t  testing.TB
	mu sync.Mutex
}

// Write forwards server output to the test log only when verbose, to keep
// failures readable.
func (w *testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.t.Logf("versitygw: %s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// PutDir uploads the files of the local directory dir (not its subdirectories) under the key prefix
// (ending in "/") of the server's bucket, as a user's `aws s3 cp --recursive` would.
func (s *Server) PutDir(ctx context.Context, prefix, dir string) error {
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(Bucket), Key: aws.String(prefix + e.Name()),
			Body: bytes.NewReader(b)}); err != nil {
			return fmt.Errorf("s3test: put %s%s: %w", prefix, e.Name(), err)
		}
	}
	return nil
}

// URL is the s3:// URL of key in the server's bucket, naming the server's endpoint.
func (s *Server) URL(key string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s", Bucket, key, s.Endpoint)
}
