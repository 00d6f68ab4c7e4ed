package rng

import (
	"slices"
	"testing"
)

func TestSameSeedSameStream(t *testing.T) {
	a, b := New(42), New(42)
	for i := 0; i < 100; i++ {
		if a.Uint64() != b.Uint64() {
			t.Fatalf("streams with one seed diverged at %d", i)
		}
	}
	// Pin the first output so a change of algorithm cannot pass unnoticed:
	// splitmix64 seeded with 0 starts with 0xe220a8397b1dcdaf.
	if got := New(0).Uint64(); got != 0xe220a8397b1dcdaf {
		t.Fatalf("splitmix64(0) first output = %#x", got)
	}
}

func TestDeriveSeparatesLabels(t *testing.T) {
	if Derive(1, "ab", "c").Uint64() == Derive(1, "a", "bc").Uint64() {
		t.Fatal("label boundaries are not part of the derived seed")
	}
	if Derive(1, "x").Uint64() != Derive(1, "x").Uint64() {
		t.Fatal("Derive is not deterministic")
	}
	if Derive(1, "x").Uint64() == Derive(2, "x").Uint64() {
		t.Fatal("seed is ignored by Derive")
	}
}

func TestIntNUniformEnough(t *testing.T) {
	r := New(7)
	counts := make([]int, 5)
	for i := 0; i < 50000; i++ {
		counts[r.IntN(5)]++
	}
	for v, c := range counts {
		if c < 9000 || c > 11000 {
			t.Fatalf("value %d drawn %d times of 50000", v, c)
		}
	}
}

func TestSampleDistinct(t *testing.T) {
	r := New(3)
	s := r.Sample(1000, 50)
	if len(s) != 50 {
		t.Fatalf("len = %d", len(s))
	}
	seen := map[int]bool{}
	for _, v := range s {
		if v < 0 || v >= 1000 || seen[v] {
			t.Fatalf("bad or repeated index %d", v)
		}
		seen[v] = true
	}
	all := New(3).Sample(4, 10)
	slices.Sort(all)
	if !slices.Equal(all, []int{0, 1, 2, 3}) {
		t.Fatalf("Sample(4,10) = %v", all)
	}
}
