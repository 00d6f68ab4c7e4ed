// Package atomicfile writes a file so that readers see either the old file or
// the whole new one, never a part: the one atomic writer of the project (the
// store's file backend, the eval cache, model saving and publishing use it).
package atomicfile

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
)

// TempPrefix starts the name of every temporary sibling, so a sweep (the
// store's) can tell a write a crash left behind from a finished file.
const TempPrefix = ".tmp-"

// Write writes path through a temporary sibling (TempPrefix + name + random),
// fsyncs it, makes it readable by all (0644) and renames it over path. It
// returns the hex sha256 of the bytes written. On error the temporary file is
// removed and path is untouched.
func Write(path string, write func(io.Writer) error) (sha256Hex string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if err = write(io.MultiWriter(f, h)); err != nil {
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
