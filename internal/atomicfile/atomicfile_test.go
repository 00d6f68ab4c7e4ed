package atomicfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.bin")
	sum, err := Write(p, func(w io.Writer) error { _, err := w.Write([]byte("new bytes")); return err })
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte("new bytes"))
	if sum != hex.EncodeToString(want[:]) {
		t.Fatalf("sha256 %s", sum)
	}
	if b, _ := os.ReadFile(p); string(b) != "new bytes" {
		t.Fatalf("file holds %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// A failed write leaves the old file and no temporary behind.
	boom := errors.New("boom")
	if _, err := Write(p, func(w io.Writer) error { w.Write([]byte("part")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new bytes" {
		t.Fatalf("file holds %q after a failed write", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, TempPrefix+"*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	if _, err := Write(filepath.Join(dir, "no", "such", "dir"), func(io.Writer) error { return nil }); err == nil {
		t.Fatal("a missing directory is an error")
	}
}
