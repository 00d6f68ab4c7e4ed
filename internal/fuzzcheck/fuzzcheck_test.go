package fuzzcheck

import "testing"

var sink []byte

func TestBytesSeesAnAllocation(t *testing.T) {
	got := Bytes(func() { sink = make([]byte, 8<<20) })
	if got < 8<<20 {
		t.Fatalf("an 8 MiB allocation measured as %d bytes", got)
	}
	b := Bound{PerByte: 4, Fixed: 1 << 20}
	if b.Limit(1000) != 4000+1<<20 {
		t.Fatalf("limit %d", b.Limit(1000))
	}
}
