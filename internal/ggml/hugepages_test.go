package ggml

import "testing"

// The advice is only a hint, so what can be checked is that it keeps every byte where it was: buffers below,
// at and above a huge page (unaligned ends), advised before and after they are written.
func TestAdviseHugePagesKeepsData(t *testing.T) {
	b := testBackend(t)
	for _, n := range []int64{1000, hugePage / 4, hugePage/4 + 3, 3*hugePage/4 + 1000} { // F32 elements
		c := NewContext(1, 0, false)
		x := c.New(F32, n)
		buf, err := b.Alloc(c)
		if err != nil {
			t.Fatal(err)
		}
		buf.AdviseHugePages()
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i%1013) - 500
		}
		x.SetF32(v)
		buf.AdviseHugePages() // again, over written pages
		got := x.F32()
		for i := range v {
			if got[i] != v[i] {
				t.Fatalf("%d elements: element %d is %g, want %g", n, i, got[i], v[i])
			}
		}
		buf.Free()
		c.Free()
	}
	var none *Buffer
	none.AdviseHugePages() // a nil buffer is left alone
}
