package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/evomerge/evomerge/internal/atomicfile"
	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/safetensors"
	"github.com/evomerge/evomerge/internal/store"
)

// hfFolderSource reports whether a population entry names a Hugging Face folder: a local directory
// (or file:// directory) with config.json, or an s3:// prefix ending in "/".
func hfFolderSource(src string) (local string, s3 bool, ok bool) {
	if strings.HasPrefix(src, "s3://") {
		return "", true, strings.HasSuffix(src, "/")
	}
	p := strings.TrimPrefix(src, "file://")
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return p, false, true
	}
	return "", false, false
}

// hfFiles are the files of a folder that the conversion reads.
var hfFiles = []string{hf.ConfigName, hf.TokenizerJSONName, hf.TokenizerModelName, hf.TokenizerConfigName,
	hf.GenerationConfigName, hf.ChatTemplateName, hf.SafetensorsName, hf.SafetensorsIndexName}

// importHFFolder converts a Hugging Face folder to GGUF and stores it. The conversion is memoised by the
// sha256 of every file it reads, so a second run (or a retry) reuses the stored GGUF.
func (a *Activities) importHFFolder(ctx context.Context, field, src, local string, s3 bool) (string, error) {
	dir := local
	if s3 {
		tmp, done, err := a.scratch("hf-download")
		if err != nil {
			return "", err
		}
		defer done()
		if err := downloadHFFolder(ctx, src, tmp); err != nil {
			return "", badInput("%s %s: %v", field, src, err)
		}
		dir = tmp
	}
	if _, err := hf.CheckFolder(dir); err != nil {
		return "", badInput("%s %s: %v", field, src, err)
	}
	key, err := folderKey(dir)
	if err != nil {
		return "", badInput("%s %s: %v", field, src, err)
	}
	memo := store.MemoName("hf-import", key)
	if b, err := a.cfg.Store.GetNamed(ctx, memo); err == nil {
		var m struct{ Model string }
		if json.Unmarshal(b, &m) == nil {
			if r, err := store.ParseRef(m.Model); err == nil {
				if ok, _ := a.cfg.Store.Has(ctx, store.Models, r); ok {
					return m.Model, nil
				}
			}
		}
	}
	tmp, done, err := a.scratch("hf-import")
	if err != nil {
		return "", err
	}
	defer done()
	out := filepath.Join(tmp, "model.gguf")
	if _, _, err := hf.ImportFile(dir, out); err != nil {
		return "", badInput("%s %s: %v", field, src, err)
	}
	ref, err := a.cfg.Store.PutFile(ctx, store.Models, out)
	if err != nil {
		return "", fmt.Errorf("%s: store %s: %w", field, src, err)
	}
	if err := a.saveMemo(ctx, memo, map[string]string{"Model": ref.String(), "Source": src}); err != nil {
		return "", err
	}
	return ref.String(), nil
}

// folderKey hashes the names and contents of the files a conversion reads (shards included).
func folderKey(dir string) (string, error) {
	names := map[string]bool{}
	for _, n := range hfFiles {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			names[n] = true
		}
	}
	if names[hf.SafetensorsIndexName] {
		shards, err := indexShards(filepath.Join(dir, hf.SafetensorsIndexName))
		if err != nil {
			return "", err
		}
		for _, s := range shards {
			names[s] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	h := sha256.New()
	fmt.Fprintf(h, "hf-import v1\n")
	for _, n := range sorted {
		r, _, err := store.HashFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", n, r)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func indexShards(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var idx safetensors.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	set := map[string]bool{}
	for _, s := range idx.WeightMap {
		if s == "" || filepath.Base(s) != s {
			return nil, fmt.Errorf("%s: shard name %q must be a plain file name", path, s)
		}
		set[s] = true
	}
	var out []string
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

// downloadHFFolder copies an HF folder under an s3:// prefix into dir: the known files, then the shards
// its index names. Absent optional files are skipped.
func downloadHFFolder(ctx context.Context, prefix, dir string) error {
	get := func(name string) (bool, error) {
		rc, err := store.OpenURL(ctx, prefix+name)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		defer rc.Close()
		_, err = atomicfile.Write(filepath.Join(dir, name), func(w io.Writer) error { _, err := io.Copy(w, rc); return err })
		return err == nil, err
	}
	for _, n := range hfFiles {
		if _, err := get(n); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, hf.SafetensorsIndexName)); err == nil {
		shards, err := indexShards(filepath.Join(dir, hf.SafetensorsIndexName))
		if err != nil {
			return err
		}
		for _, s := range shards {
			if ok, err := get(s); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("shard %s%s is missing", prefix, s)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, hf.ConfigName)); err != nil {
		return fmt.Errorf("%s%s is missing", prefix, hf.ConfigName)
	}
	return nil
}

// publishHF writes the winner as a Hugging Face folder next to a published GGUF path: <path without
// .gguf>-hf/ (config.json, model.safetensors, tokenizer files).
func publishHF(ggufPath string) (string, error) {
	dir := strings.TrimSuffix(ggufPath, filepath.Ext(ggufPath)) + "-hf"
	if err := hf.Export(ggufPath, dir); err != nil {
		return "", fmt.Errorf("publish HF folder: %w", err)
	}
	return dir, nil
}
