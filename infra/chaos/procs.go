// Package chaos proves EvoMerge's durability: it runs the Temporal server,
// the workers and the starter as separate processes, kills workers with
// SIGKILL and restarts the server while an evolution runs, and checks that
// the run still ends with the same winner (byte for byte) as an uninterrupted
// run of the same config and seed, with nothing corrupt or half-written left
// in the store.
package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Binaries are the three programs of a deployment.
type Binaries struct {
	Server, Worker, Starter string
}

// Build compiles the server, worker and starter into dir once. The caller's
// CGO_CFLAGS/CGO_CXXFLAGS are kept so the ggml build cache is shared.
func Build(ctx context.Context, dir string) (Binaries, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return Binaries{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"./infra/evomerge-server", "./workers", "./starter")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Binaries{}, fmt.Errorf("chaos: go build: %v\n%s", err, out.String())
	}
	return Binaries{
		Server:  filepath.Join(dir, "evomerge-server"),
		Worker:  filepath.Join(dir, "workers"),
		Starter: filepath.Join(dir, "starter"),
	}, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("chaos: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("chaos: not inside the evomerge module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

// proc is one child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has ended
	err  error         // its exit status, valid after done
	log  *os.File
}

// startProc starts bin with its output appended to logPath; stdout, when
// given, also receives the standard output and is closed when it ends.
func startProc(name, bin string, args, env []string, logPath string, stdout io.WriteCloser) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = lf
	cmd.Stdout = lf
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(lf, stdout)
	}
	// Own process group: a SIGKILL aimed at it never reaches the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("chaos: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		if c, ok := stdout.(io.Closer); ok {
			c.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// kill sends SIGKILL (no chance to heartbeat or checkpoint) and waits.
func (p *proc) kill() error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("chaos: %s (pid %d) did not die after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// stop asks politely, then kills.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.kill()
	}
}

// exited reports whether the process has ended (and why).
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// server is the evomerge-server process on a fixed port and SQLite file, so
// a restart continues the same state.
type server struct {
	bin, db, logPath string
	port             int
	p                *proc
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *server) start(ctx context.Context) error {
	pr, pw := io.Pipe()
	p, err := startProc("evomerge-server", s.bin,
		[]string{"--db", s.db, "--ip", "127.0.0.1", "--port", strconv.Itoa(s.port), "--headless", "--log-level", "error"},
		nil, s.logPath, pw)
	if err != nil {
		return err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "evomerge-server ready") {
				close(ready)
				signalled = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
		s.p = p
		return nil
	case <-time.After(3 * time.Minute):
		_ = p.kill()
		return fmt.Errorf("chaos: server did not print its ready line in 3 minutes (log %s)", s.logPath)
	case <-ctx.Done():
		_ = p.kill()
		return ctx.Err()
	}
}
