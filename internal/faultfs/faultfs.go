// Package faultfs gives tests a small real file system that fills up: a tmpfs of a chosen size mounted on a
// temporary directory, so writes fail with the kernel's own ENOSPC, and can be grown to model space coming
// back. Mounting needs root (or a user namespace that allows it); where it is refused the test is skipped
// with the reason, and tests pair it with an injected write error that runs everywhere.
package faultfs

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a fresh temporary directory and returns it; it is unmounted
// when the test ends. The test is skipped when mounting is not allowed here.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a %d-byte tmpfs here (needs root): %v: %s", size, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Resize changes the size of a disk made by SmallDisk (space returns, or goes).
func Resize(t testing.TB, dir string, size int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		t.Fatalf("resize tmpfs %s to %d bytes: %v: %s", dir, size, err, out)
	}
}
