// Package stall is a loopback TCP proxy that misbehaves on request, put in front of the S3 server by the
// chaos harness and the store's fault tests: it can delay new connections, drop them, or let a response
// start and then freeze it, and it can be pointed at a restarted server's new address while clients keep
// the proxy's. It knows nothing of S3.
package stall

import (
	"io"
	"net"
	"sync"
	"time"
)

// Mode is how the proxy treats connections.
type Mode struct {
	Delay       time.Duration // a new connection waits this long before it is forwarded
	Drop        bool          // new connections are closed at once (the server looks down)
	FreezeAfter int64         // > 0: after this many response bytes a connection stops forwarding (a stall mid-body)
}

// Proxy forwards 127.0.0.1:port to a backend address.
type Proxy struct {
	ln net.Listener

	mu      sync.Mutex
	backend string
	mode    Mode
	conns   map[net.Conn]struct{}
	stats   Stats
}

// Stats counts what the proxy did.
type Stats struct {
	Accepted, Dropped, Frozen, BackendDown int
}

// Start listens on a free loopback port and forwards to backend (host:port).
func Start(backend string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, backend: backend, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetBackend points new connections at another address (a restarted server).
func (p *Proxy) SetBackend(addr string) {
	p.mu.Lock()
	p.backend = addr
	p.mu.Unlock()
}

// Set changes the mode for new connections; Mode{} passes everything through.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// CloseConnections cuts every open connection (a network blip).
func (p *Proxy) CloseConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops the proxy and cuts its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.CloseConnections()
	return err
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		m, backend := p.mode, p.backend
		p.stats.Accepted++
		if m.Drop {
			p.stats.Dropped++
		}
		p.mu.Unlock()
		if m.Drop {
			c.Close()
			continue
		}
		go p.forward(c, backend, m)
	}
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) forward(client net.Conn, backend string, m Mode) {
	p.track(client, true)
	defer p.track(client, false)
	defer client.Close()
	if m.Delay > 0 {
		time.Sleep(m.Delay)
	}
	server, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		p.mu.Lock()
		p.stats.BackendDown++
		p.mu.Unlock()
		return
	}
	p.track(server, true)
	defer p.track(server, false)
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(server, client); done <- struct{}{} }()
	go func() {
		if m.FreezeAfter > 0 {
			if n, _ := io.CopyN(client, server, m.FreezeAfter); n == m.FreezeAfter {
				p.mu.Lock()
				p.stats.Frozen++
				p.mu.Unlock()
				// Hold the connection open and silent until one side gives up.
				io.Copy(io.Discard, client)
			}
		} else {
			io.Copy(client, server)
		}
		done <- struct{}{}
	}()
	<-done
}
