package ports

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortBelowEphemeralWithDerivedFree: the chosen port and every derived service port lie below
// Linux's ephemeral range and nothing listens on them; Free (the check FreePort makes for every derived
// port) sees a port that is listened on as taken.
func TestFreePortBelowEphemeralWithDerivedFree(t *testing.T) {
	for range 20 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range Derived(port) {
			if p < 10000 || p >= 32768 {
				t.Fatalf("port %d (derived from %d) is outside [10000, 32768)", p, port)
			}
			if err := Free("127.0.0.1", p); err != nil {
				t.Fatalf("derived port %d of %d is taken: %v", p, port, err)
			}
		}
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+MembershipOffset+2)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if Free("127.0.0.1", port+MembershipOffset+2) == nil {
		t.Fatal("Free says a listened-on port is free")
	}
	if got := len(Derived(port)); got != 2*len(Services) {
		t.Fatalf("Derived gives %d ports, want %d", got, 2*len(Services))
	}
}
