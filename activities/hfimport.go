package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/evomerge/evomerge/internal/hf"
	"github.com/evomerge/evomerge/internal/store"
)

// hfFolderSource reports whether a population entry names a Hugging Face folder: a local directory
// (or file:// directory) with config.json, or an s3:// prefix ending in "/".
func hfFolderSource(src string) (local string, s3 bool, ok bool) {
	if strings.HasPrefix(src, "s3://") {
		u, err := url.Parse(src)
		return "", true, err == nil && strings.HasSuffix(u.Path, "/")
	}
	p := strings.TrimPrefix(src, "file://")
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return p, false, true
	}
	return "", false, false
}

// importHFFolder converts a Hugging Face folder to GGUF and stores it. The conversion is memoised by the
// sha256 of every file it reads, so a second run (or a retry) reuses the stored GGUF.
func (a *Activities) importHFFolder(ctx context.Context, field, src, local string, s3 bool) (string, error) {
	dir, name := local, ""
	// refuse names the source in an error about the downloaded copy.
	refuse := func(err error) error { return badInput("%s %s: %v", field, src, err) }
	if s3 {
		tmp, done, err := a.scratch("hf-download")
		if err != nil {
			return "", err
		}
		defer done()
		remote := strings.TrimSuffix(strings.SplitN(src, "?", 2)[0], "/")
		name = remote[strings.LastIndex(remote, "/")+1:]
		refuse = func(err error) error {
			return badInput("%s %s: %s", field, src, strings.ReplaceAll(err.Error(), filepath.Clean(tmp), remote))
		}
		if err := downloadHFFolder(ctx, src, tmp); err != nil {
			return "", refuse(err)
		}
		dir = tmp
	}
	if _, err := hf.CheckFolder(dir); err != nil {
		return "", refuse(err)
	}
	key, err := folderKey(dir)
	if err != nil {
		return "", refuse(err)
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
	if _, _, err := hf.ImportFileAs(dir, name, out); err != nil {
		return "", refuse(err)
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
	for _, n := range hf.FolderFiles {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			names[n] = true
		}
	}
	if names[hf.SafetensorsIndexName] {
		shards, err := hf.IndexShards(filepath.Join(dir, hf.SafetensorsIndexName))
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

// downloadHFFolder copies an HF folder under an s3:// prefix into dir (every file the conversion reads).
func downloadHFFolder(ctx context.Context, prefix, dir string) error {
	if err := hf.Fetch(URLOpener(ctx, prefix), dir, false); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return nil
}

// URLOpener opens the files of a model folder under an s3:// prefix (its path ending in "/"; a query
// such as ?endpoint= is kept) through store.OpenURL.
func URLOpener(ctx context.Context, prefix string) hf.Opener {
	return func(name string) (io.ReadCloser, bool, error) {
		u, err := url.Parse(prefix)
		if err != nil {
			return nil, false, fmt.Errorf("bad URL %q: %w", prefix, err)
		}
		u.Path += name
		rc, err := store.OpenURL(ctx, u.String())
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, nil
		}
		return rc, err == nil, err
	}
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
