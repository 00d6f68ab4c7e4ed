package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// Where a user opens a stored report: a path in a file store, an http(s)
// URL for S3 behind an http(s) endpoint, nothing for plain AWS S3 (its
// objects are private by default and the region is not known here).
func TestLocationIsAPathOrAnHTTPURL(t *testing.T) {
	ctx := context.Background()
	ref := Ref("sha256:" + strings.Repeat("ab", 32))
	dir := t.TempDir()
	fs, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fs.Location(Reports, ref), filepath.Join(dir, "reports", ref.Hex()+".html"); got != want {
		t.Fatalf("file store: %q, want %q", got, want)
	}
	for url, want := range map[string]string{
		"s3://bkt/runs/x?endpoint=http://127.0.0.1:9000":             "http://127.0.0.1:9000/bkt/runs/x/reports/" + ref.Hex() + ".html",
		"s3://bkt?endpoint=https://s3.example.com/&path_style=false": "https://bkt.s3.example.com/reports/" + ref.Hex() + ".html",
		"s3://bkt/p": "",
	} {
		st, err := Open(ctx, url, Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Location(Reports, ref); got != want {
			t.Fatalf("%s: %q, want %q", url, got, want)
		}
	}
}
