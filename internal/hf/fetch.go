package hf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/evomerge/evomerge/internal/atomicfile"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// FolderFiles are the files of a model folder that Import reads, besides the shards an index names.
var FolderFiles = []string{ConfigName, TokenizerJSONName, TokenizerModelName, TokenizerConfigName,
	GenerationConfigName, ChatTemplateName, SafetensorsName, SafetensorsIndexName}

// Opener opens the file name of a remote model folder; found is false when it does not exist.
type Opener func(name string) (rc io.ReadCloser, found bool, err error)

// Fetch copies a model folder from open into the local directory dir: the files of FolderFiles that
// exist, then every shard model.safetensors.index.json names (each must exist). With headersOnly a
// safetensors file is copied up to the end of its header and the rest left a hole of the size the
// header gives, so CheckFolder reads it as the whole file without a weight being transferred.
func Fetch(open Opener, dir string, headersOnly bool) error {
	get := func(name string) (bool, error) {
		rc, found, err := open(name)
		if err != nil || !found {
			return false, err
		}
		defer rc.Close()
		path := filepath.Join(dir, name)
		if headersOnly && filepath.Ext(name) == ".safetensors" {
			return true, copyHeader(rc, path, name)
		}
		_, err = atomicfile.Write(path, func(w io.Writer) error { _, err := io.Copy(w, rc); return err })
		return true, err
	}
	for _, n := range FolderFiles {
		if _, err := get(n); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigName)); err != nil {
		return fmt.Errorf("%s is missing", ConfigName)
	}
	if _, err := os.Stat(filepath.Join(dir, SafetensorsIndexName)); err != nil {
		return nil
	}
	shards, err := IndexShards(filepath.Join(dir, SafetensorsIndexName))
	if err != nil {
		return err
	}
	for _, s := range shards {
		if ok, err := get(s); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("shard %s (named by %s) is missing", s, SafetensorsIndexName)
		}
	}
	return nil
}

// copyHeader writes the length prefix and JSON header of a safetensors stream to path and extends the
// file, without writing, to the size the header's data offsets give.
func copyHeader(r io.Reader, path, name string) error {
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return fmt.Errorf("%s: reading the header length: %v", name, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > safetensors.MaxHeaderBytes {
		return fmt.Errorf("%s: header length %d exceeds limit %d", name, n, safetensors.MaxHeaderBytes)
	}
	head := make([]byte, 8+n)
	copy(head, lenBuf[:])
	if _, err := io.ReadFull(r, head[8:]); err != nil {
		return fmt.Errorf("%s: truncated header: %v", name, err)
	}
	// Parsed against an unbounded size: the offsets are what says how long the file is.
	f, err := safetensors.Read(bytes.NewReader(head), 1<<62, name)
	if err != nil {
		return err
	}
	end := int64(len(head))
	for _, t := range f.Tensors {
		end = max(end, t.Offset+t.Size)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := out.Write(head); err != nil {
		out.Close()
		return err
	}
	if err := out.Truncate(end); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// IndexShards reads the shard file names of a model.safetensors.index.json, sorted, each a plain file name.
func IndexShards(path string) ([]string, error) {
	b, _, err := readLimited(path, maxConfigBytes*64)
	if err != nil {
		return nil, err
	}
	var idx safetensors.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, jsonError(path, b, err)
	}
	return idx.Shards(path)
}
