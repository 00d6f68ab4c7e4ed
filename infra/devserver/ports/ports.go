// Package ports chooses the loopback ports of a Temporal dev server: the
// frontend port and the service ports derived from it (gRPC port+i,
// membership port+100+i). It is its own small package so that tools which
// only start a server process (the chaos harness) choose ports exactly as
// in-process test servers do, without linking the server.
package ports

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

// Services are the server's services in the order their ports are derived
// from the frontend port.
var Services = []string{"frontend", "history", "matching", "worker"}

// MembershipOffset separates a service's membership port from its gRPC port.
const MembershipOffset = 100

// Derived lists the ports a server on frontend port uses: gRPC port+i and
// membership port+MembershipOffset+i for each service i (the frontend first).
func Derived(port int) []int {
	out := make([]int, 0, 2*len(Services))
	for i := range Services {
		out = append(out, port+i, port+MembershipOffset+i)
	}
	return out
}

// Free reports whether nothing listens on ip:port.
func Free(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// FreePort returns a loopback frontend port with every derived port free.
// It lies below Linux's ephemeral range (32768 and up), so the kernel never
// hands it, or a derived port, to another process's outgoing connection or
// ":0" listener between this check and a restart of the server on it (that
// race made a restarted server exit: "bind: address already in use" on a
// membership port).
func FreePort() (int, error) {
	lo, hi := 10000, 32768-MembershipOffset-len(Services)
	start := lo + rand.IntN(hi-lo)
	for i := 0; i < hi-lo; i += 7 {
		port := lo + (start-lo+i)%(hi-lo)
		free := true
		for _, p := range Derived(port) {
			if Free("127.0.0.1", p) != nil {
				free = false
				break
			}
		}
		if free {
			return port, nil
		}
	}
	return 0, errors.New("ports: no free port below the ephemeral range")
}
