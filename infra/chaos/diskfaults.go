package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// diskWorker is the worker whose work directory (where fine-tune checkpoints and merged children are
// written before they go to the store) lies on a tmpfs the harness can shrink.
const diskWorker = "gpu-1"

// roomySize is the size of the tmpfs while there is space; faultSize the room left beyond what is in use
// while the disk is "full" (one page).
const roomySize, faultSize = 256 << 20, 4096

// mountWorkDisk mounts a tmpfs on the work directory of diskWorker before it starts. It needs root (or a
// user namespace that allows mounts); the error says so.
func mountWorkDisk(dir string) (string, error) {
	work := filepath.Join(dir, "worker-"+diskWorker, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", roomySize), "tmpfs", work).CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: -disk-faults mounts a tmpfs on %s, which needs root: %v: %s", work, err, bytes.TrimSpace(out))
	}
	return work, nil
}

func resizeDisk(dir string, size int) error {
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		return fmt.Errorf("resize tmpfs %s to %d bytes: %v: %s", dir, size, err, bytes.TrimSpace(out))
	}
	return nil
}

func unmountDisk(dir string) error {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: umount %s: %v: %s", dir, err, bytes.TrimSpace(out))
	}
	return nil
}

// diskFault fills the disk of diskWorker for a drawn 4-8 s: the tmpfs shrinks to one page (the kernel
// refuses while more is in use, so it is retried until an upload has freed the space), then grows back.
// Attempts that write there meanwhile fail with ENOSPC naming the path and are retried by Temporal, on
// this worker once space returns or on the other gpu worker.
func (h *harness) diskFault(ctx context.Context, rep *Report) error {
	hold := time.Duration(4000+h.rng.IntN(4000)) * time.Millisecond
	// Strike while gpu-1 runs a fine-tune that has checkpoints still to write, so the fault lands on a
	// write (a full disk nobody writes to costs nothing); after a minute without one, strike anyway.
	aim := time.Now().Add(20 * time.Second)
	seen := false
	for time.Now().Before(aim) && !seen {
		seen = h.fineTuneOnDiskWorker(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Full: no room beyond what is in use now (the kernel refuses a size below that).
		var fs syscall.Statfs_t
		size := faultSize
		if err := syscall.Statfs(h.disk, &fs); err == nil {
			size = int(fs.Blocks-fs.Bfree)*int(fs.Bsize) + faultSize
		}
		err := resizeDisk(h.disk, size)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: disk fault: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	h.logf("disk fault %d: worker %s's work directory %s is full for %.1fs (a fine-tune running there: %v)", rep.DiskFaults+1, diskWorker, h.disk, hold.Seconds(), seen)
	select {
	case <-ctx.Done():
	case <-time.After(hold):
	}
	if err := resizeDisk(h.disk, roomySize); err != nil {
		return fmt.Errorf("chaos: disk fault: %w", err)
	}
	rep.DiskFaults++
	rep.DiskFull += hold
	h.logf("disk fault %d over: space is back", rep.DiskFaults)
	return nil
}

// fineTuneOnDiskWorker reports whether diskWorker runs a fine-tune attempt that is still training.
func (h *harness) fineTuneOnDiskWorker(ctx context.Context) bool {
	d, err := h.describe(ctx)
	if err != nil {
		return false
	}
	h.mu.Lock()
	pid := h.workers[diskWorker].p.cmd.Process.Pid
	h.mu.Unlock()
	for _, c := range h.running(ctx, d) {
		if c.pid == pid && c.phase == PhaseFineTune && !h.dead[attemptKey(c.Interrupted)] && c.Step < 16 {
			return true
		}
	}
	return false
}

// countENOSPC counts the attempts diskWorker's log reports failed for a full disk.
func countENOSPC(logPath string) int {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "no space left") && strings.Contains(line, `"level":"error"`) {
			n++
		}
	}
	return n
}
