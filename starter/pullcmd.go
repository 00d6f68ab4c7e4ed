package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/activities"
	"github.com/evomerge/evomerge/internal/store"
)

// cmdPull copies a winner that a run published to the store (target kind
// "store": runs/<name>/winner.json) out into a directory, as <name>.gguf for
// llama.cpp and Ollama and <name>-hf/ for Hugging Face tooling. Every object is
// verified against its sha256 on the way; the outputs appear whole or not at
// all, and existing files are never overwritten.
func cmdPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pull", stderr)
	var sf storeFlags
	sf.register(fs)
	out := fs.String("o", ".", "directory to write <name>.gguf and <name>-hf/ into")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	name, err := oneArg(pos, "published name (the run's name, or its publish target's name)")
	if err != nil {
		return err
	}
	key := store.WinnerName(name)
	if err := store.ValidateName(key); err != nil {
		return fmt.Errorf("%w: pull %s: %v", errUsage, name, err)
	}
	st, err := sf.open(ctx)
	if err != nil {
		return fmt.Errorf("--store %s: %w", sf.url, err)
	}
	rec, err := readWinner(ctx, st, key)
	if err != nil {
		return err
	}
	gguf := filepath.Join(*out, name+".gguf")
	hfDir := filepath.Join(*out, name+"-hf")
	for _, p := range []string{gguf, hfDir} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("pull %s: %s already exists; remove it or pull into another -o", name, p)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("-o %s: %w", *out, err)
	}
	// Everything is written under one temporary directory beside the outputs and
	// renamed into place at the end, so a failed pull leaves nothing behind.
	tmp, err := os.MkdirTemp(*out, ".pull-"+name+"-")
	if err != nil {
		return fmt.Errorf("-o %s: %w", *out, err)
	}
	defer os.RemoveAll(tmp)
	if err := copyObject(ctx, st, store.Models, rec.Model, filepath.Join(tmp, "model.gguf")); err != nil {
		return fmt.Errorf("%s: model %s: %w", key, rec.Model, err)
	}
	if len(rec.HF) > 0 {
		if err := os.Mkdir(filepath.Join(tmp, "hf"), 0o755); err != nil {
			return err
		}
		for _, file := range slices.Sorted(maps.Keys(rec.HF)) {
			if err := copyObject(ctx, st, store.Blobs, rec.HF[file], filepath.Join(tmp, "hf", file)); err != nil {
				return fmt.Errorf("%s: hf file %s (%s): %w", key, file, rec.HF[file], err)
			}
		}
	}
	if err := os.Rename(filepath.Join(tmp, "model.gguf"), gguf); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: winner of run %q, %s\n", gguf, rec.Run, rec.Model)
	if len(rec.HF) > 0 {
		if err := os.Rename(filepath.Join(tmp, "hf"), hfDir); err != nil {
			os.Remove(gguf)
			return err
		}
		fmt.Fprintf(stdout, "%s/: the same model as a Hugging Face folder (%d files)\n", hfDir, len(rec.HF))
	} else {
		fmt.Fprintf(stdout, "(%s names no Hugging Face folder: it was published before folders were stored)\n", key)
	}
	return nil
}

// readWinner reads and checks a winner record: the model must be a content
// reference and every HF file name a plain file name, since the record comes
// from a shared store and its names become paths here.
func readWinner(ctx context.Context, st *store.Store, key string) (activities.WinnerRecord, error) {
	var rec activities.WinnerRecord
	b, err := st.GetNamed(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return rec, fmt.Errorf("%s: not in the store %s (was the run published with target kind \"store\"?)", key, st)
	}
	if err != nil {
		return rec, fmt.Errorf("%s: %w", key, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: not a winner record: %w", key, err)
	}
	if _, err := store.ParseRef(rec.Model); err != nil {
		return rec, fmt.Errorf("%s: field model: %w", key, err)
	}
	for file, ref := range rec.HF {
		if file == "" || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
			return rec, fmt.Errorf("%s: field hf: %q is not a plain file name", key, file)
		}
		if _, err := store.ParseRef(ref); err != nil {
			return rec, fmt.Errorf("%s: field hf.%s: %w", key, file, err)
		}
	}
	return rec, nil
}

// copyObject writes a verified copy of a content object to dst.
func copyObject(ctx context.Context, st *store.Store, kind store.Kind, ref, dst string) error {
	l, err := st.Fetch(ctx, kind, store.Ref(ref))
	if err != nil {
		return err
	}
	defer l.Close()
	src, err := os.Open(l.Path)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
