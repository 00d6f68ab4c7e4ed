package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// chromium finds Debian's headless-capable browser; `make test-report`
// installs it when missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: the browser check of the HTML reports is skipped (run `make test-report`, which installs Debian's chromium)")
	return ""
}

// screenshot renders html in a real headless browser and returns the page image.
func screenshot(t *testing.T, browser, html string) image.Image {
	t.Helper()
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1200,4000", "--screenshot="+shot, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", browser, err, out)
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// colourful counts clearly coloured pixels: the plots' lines, bands and
// points. The page's text is black and grey, so without decoded images
// there are next to none.
func colourful(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			hi, lo := max(r, g, bb)>>8, min(r, g, bb)>>8
			if hi-lo > 60 {
				n++
			}
		}
	}
	return n
}

var imgTag = regexp.MustCompile(`<img [^>]*>`)

// The reports open in a real browser and their plots are there: the page
// with its images shows thousands of coloured pixels; the same page with
// the images taken out shows almost none.
func TestReportsInHeadlessBrowser(t *testing.T) {
	browser := chromium(t)
	for name, render := range map[string]func(*bytes.Buffer) error{
		"run":        func(b *bytes.Buffer) error { return RenderRun(b, sampleRun()) },
		"experiment": func(b *bytes.Buffer) error { return RenderExperiment(b, sampleExperiment()) },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := render(&buf); err != nil {
				t.Fatal(err)
			}
			with := colourful(screenshot(t, browser, buf.String()))
			without := colourful(screenshot(t, browser, imgTag.ReplaceAllString(buf.String(), "")))
			t.Logf("coloured pixels: %d with the plots, %d without", with, without)
			if with < 10000 || with < 10*(without+100) {
				t.Fatalf("the plots did not show: %d coloured pixels with them, %d without", with, without)
			}
		})
	}
}
