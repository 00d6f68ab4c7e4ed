package report

import (
	"bytes"
	"encoding/base64"
	stdhtml "html"
	"image"
	"image/png"
	"math"
	"regexp"
	"strings"
	"testing"
)

var imgSrc = regexp.MustCompile(`<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"`)

// decodedPlots decodes every embedded PNG and checks it is a real drawing:
// a sensible size and enough distinct pixels not to be blank.
func decodedPlots(t *testing.T, html string) map[string]image.Image {
	t.Helper()
	out := map[string]image.Image{}
	for _, m := range imgSrc.FindAllStringSubmatch(html, -1) {
		// html/template writes "+" as "&#43;" in attributes; a browser decodes it.
		raw, err := base64.StdEncoding.DecodeString(stdhtml.UnescapeString(m[2]))
		if err != nil {
			t.Fatalf("%s: base64: %v", m[1], err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: png: %v", m[1], err)
		}
		b := img.Bounds()
		if b.Dx() < 300 || b.Dy() < 200 {
			t.Errorf("%s: %dx%d pixels, too small", m[1], b.Dx(), b.Dy())
		}
		if f := inkFraction(img); f < 0.01 {
			t.Errorf("%s: only %.4f of the pixels are drawn on", m[1], f)
		}
		out[m[1]] = img
	}
	if n := strings.Count(html, "<img"); n != len(out) {
		t.Fatalf("%d img tags but %d embedded PNGs", n, len(out))
	}
	return out
}

// inkFraction is the share of pixels that are not the background white.
func inkFraction(img image.Image) float64 {
	b := img.Bounds()
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bb < 0xf000 {
				ink++
			}
		}
	}
	return float64(ink) / float64(b.Dx()*b.Dy())
}

func TestRenderRun(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderRun(&buf, sampleRun()); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	plots := decodedPlots(t, html)
	for _, want := range []string{"fitness per generation", "diversity per generation", "fitness spread per generation", "held-out scores", "lineage tree"} {
		if plots[want] == nil {
			t.Errorf("no %q plot", want)
		}
	}
	for _, want := range []string{
		"EvoMerge run demo", "the winner <b>beats</b>", "0.7000 [0.6000, 0.8000]",
		`<span class="win">#7</span>`, "merge dare_ties(d=0.30) #4 × #5 → fine-tune lora", "the population&#39;s shared base",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report does not contain %q", want)
		}
	}
	// Self-contained: nothing is fetched from elsewhere.
	for _, bad := range []string{"http://", "https://", "<script", "<link"} {
		if strings.Contains(html, bad) {
			t.Errorf("report refers to %q", bad)
		}
	}
	// The lineage lists only the winner's ancestors (#2 is one through #5; all are).
	if !strings.Contains(html, "#2</span>") && !strings.Contains(html, "<li><span>#2</span>") {
		t.Errorf("ancestor #2 missing from the tree")
	}
}

func TestRenderRunWithoutDiversity(t *testing.T) {
	r := sampleRun()
	for i := range r.Generations {
		r.Generations[i].Diversity = nil
	}
	r.Lineage, r.HeldOut = nil, nil
	var buf bytes.Buffer
	if err := RenderRun(&buf, r); err != nil {
		t.Fatal(err)
	}
	plots := decodedPlots(t, buf.String())
	if len(plots) != 1 || plots["fitness per generation"] == nil {
		t.Fatalf("plots %v, want only the fitness plot", len(plots))
	}
}

func TestRenderExperiment(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderExperiment(&buf, sampleExperiment()); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	plots := decodedPlots(t, html)
	for _, want := range []string{"held-out per arm", "fitness curves per arm", "diversity per arm"} {
		if plots[want] == nil {
			t.Errorf("no %q plot", want)
		}
	}
	for _, want := range []string{
		"evomerge wins", "95 % t intervals", "0.4700 [0.4500, 0.4900]", "random_merge", "100 003",
		"evomerge − finetune_only", "exp-merge_only-3", "CI excludes 0",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report does not contain %q", want)
		}
	}
}

func TestRenderRejectsBadInput(t *testing.T) {
	var buf bytes.Buffer
	e := sampleExperiment()
	e.Arms[1].Name = ""
	e.Arms[2].HeldOut.Lo = math.NaN()
	e.Arms[3].Seeds[0].Best[2] = math.Inf(1)
	err := RenderExperiment(&buf, e)
	if err == nil {
		t.Fatal("bad experiment accepted")
	}
	for _, want := range []string{"arms[1].name: empty", "arms[2].held_out.lo is NaN", "arms[3].seeds[0].best[2] is +Inf"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := RenderExperiment(&buf, Experiment{Title: "x"}); err == nil || !strings.Contains(err.Error(), "arms: empty") {
		t.Errorf("empty experiment: %v", err)
	}
	r := sampleRun()
	r.Generations[1].Diversity.MeanDistance = math.NaN()
	if err := RenderRun(&buf, r); err == nil || !strings.Contains(err.Error(), "generations[1].diversity.mean_distance is NaN") {
		t.Errorf("bad run: %v", err)
	}
	if err := RenderRun(&buf, Run{Name: "empty"}); err == nil || !strings.Contains(err.Error(), "generations: empty") {
		t.Errorf("empty run: %v", err)
	}
}

func TestShortOp(t *testing.T) {
	for op, want := range map[string]string{
		"merge ties(d=0.50) #3 × #7 → fine-tune full lr=1e-3 20 steps on addition": "ties → ft addition",
		"merge slerp(t=0.40) #1 × #2":             "slerp",
		"fine-tune full lr=2e-3 60 steps on copy": "ft copy",
		"import models/a.gguf":                    "import",
	} {
		if got := shortOp(op); got != want {
			t.Errorf("shortOp(%q) = %q, want %q", op, got, want)
		}
	}
}
