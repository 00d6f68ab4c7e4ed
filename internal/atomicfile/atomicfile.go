// Package atomicfile writes a file so that readers see either the old file or
// the whole new one, never a part: the one atomic writer of the project (the
// store's file backend, the eval cache, model saving and publishing use it).
package atomicfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// TempPrefix starts the name of every temporary sibling, so a sweep (the
// store's) can tell a write a crash left behind from a finished file.
const TempPrefix = ".tmp-"

// Write writes path through a temporary sibling (TempPrefix + name + random),
// fsyncs it, makes it readable by all (0644) and renames it over path. It
// returns the hex sha256 of the bytes written. On error the temporary file is
// removed and path is untouched; a full disk is reported naming path and its
// directory.
func Write(path string, write func(io.Writer) error) (sha256Hex string, err error) {
	return WriteTo(path, nil, write)
}

// WriteTo is Write with the temporary file seen through wrap (nil: as it is),
// which is how tests put a fault, such as a disk that fills up, between the
// writer and the file.
func WriteTo(path string, wrap func(*os.File) io.Writer, write func(io.Writer) error) (sha256Hex string, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			if errors.Is(err, syscall.ENOSPC) {
				err = fmt.Errorf("writing %s: no space left in %s: %w", path, dir, err)
			}
		}
	}()
	var dst io.Writer = f
	if wrap != nil {
		dst = wrap(f)
	}
	h := sha256.New()
	if err = write(io.MultiWriter(dst, h)); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return "", err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
