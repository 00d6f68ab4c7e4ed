package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/color"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot sizes: wide enough to read on a laptop screen at 1x.
const (
	plotW = 8 * vg.Inch
	plotH = 3.6 * vg.Inch
)

// pngURI renders p as a base64 PNG data URI.
func pngURI(p *plot.Plot, w, h vg.Length) (string, error) {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	// Bottom right: fitness curves rise, so that corner is usually empty.
	p.Legend.Top = false
	p.Add(plotter.NewGrid())
	return p
}

// translucent is c at the given opacity (bands under lines).
func translucent(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}

func line(xys plotter.XYs, c color.Color, width vg.Length, dashed bool) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Color, l.Width = c, width
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return l, nil
}

// band is the area between lo and hi over x.
func band(x, lo, hi []float64, c color.Color) (*plotter.Polygon, error) {
	pts := make(plotter.XYs, 0, 2*len(x))
	for i := range x {
		pts = append(pts, plotter.XY{X: x[i], Y: hi[i]})
	}
	for i := len(x) - 1; i >= 0; i-- {
		pts = append(pts, plotter.XY{X: x[i], Y: lo[i]})
	}
	pg, err := plotter.NewPolygon(pts)
	if err != nil {
		return nil, err
	}
	pg.Color = translucent(c, 60)
	pg.LineStyle.Width = 0
	return pg, nil
}

// integerTicks labels whole generations only.
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1
	for (hi-lo)/float64(step) > 12 {
		step *= 2
	}
	var ts []plot.Tick
	for v := int(lo); float64(v) <= hi; v++ {
		t := plot.Tick{Value: float64(v)}
		if v%step == 0 {
			t.Label = fmt.Sprint(v)
		}
		ts = append(ts, t)
	}
	return ts
}

// ---------------------------------------------------------------- run plots

func runFitnessPlot(r Run) (string, error) {
	p := newPlot("Fitness per generation (validation split)", "generation", "fitness")
	p.X.Tick.Marker = integerTicks{}
	var x, best, mean, lo, hi []float64
	spread := true
	for _, g := range r.Generations {
		x = append(x, float64(g.Generation))
		best, mean = append(best, g.Best), append(mean, g.Mean)
		if g.Diversity == nil {
			spread = false
		} else {
			lo, hi = append(lo, g.Diversity.FitnessMin), append(hi, g.Diversity.FitnessMax)
		}
	}
	c0, c1 := plotutil.Color(0), plotutil.Color(1)
	if spread {
		b, err := band(x, lo, hi, c1)
		if err != nil {
			return "", err
		}
		p.Add(b)
		p.Legend.Add("population min–max", b)
	}
	lb, err := line(xy(x, best), c0, vg.Points(2.5), false)
	if err != nil {
		return "", err
	}
	lm, err := line(xy(x, mean), c1, vg.Points(2), false)
	if err != nil {
		return "", err
	}
	p.Add(lb, lm)
	p.Legend.Add("best", lb)
	p.Legend.Add("mean", lm)
	if len(best) > 0 {
		li, err := line(xy([]float64{x[0], x[len(x)-1]}, []float64{best[0], best[0]}), color.Gray{Y: 110}, vg.Points(1), true)
		if err != nil {
			return "", err
		}
		p.Add(li)
		p.Legend.Add("best initial", li)
	}
	return pngURI(p, plotW, plotH)
}

// runDiversityPlot draws mean pairwise distance (min–max band) and the
// fitness standard deviation on a second plot; "" when nothing was measured.
func runDiversityPlot(r Run) (weights, fitness string, err error) {
	var x, mean, lo, hi, std []float64
	for _, g := range r.Generations {
		if g.Diversity == nil {
			continue
		}
		d := g.Diversity
		x = append(x, float64(g.Generation))
		mean, lo, hi, std = append(mean, d.MeanDistance), append(lo, d.MinDistance), append(hi, d.MaxDistance), append(std, d.FitnessStd)
	}
	if len(x) == 0 {
		return "", "", nil
	}
	c := plotutil.Color(2)
	p := newPlot("Diversity in weight space: pairwise distance 1 − cos of task vectors", "generation", "distance")
	p.Legend.Top = true // distances usually fall
	p.X.Tick.Marker = integerTicks{}
	b, err := band(x, lo, hi, c)
	if err != nil {
		return "", "", err
	}
	l, err := line(xy(x, mean), c, vg.Points(2.5), false)
	if err != nil {
		return "", "", err
	}
	p.Add(b, l)
	p.Legend.Add("min–max over pairs", b)
	p.Legend.Add("mean over pairs", l)
	p.Y.Min = 0
	if weights, err = pngURI(p, plotW, plotH); err != nil {
		return "", "", err
	}
	q := newPlot("Spread of fitness: standard deviation over the population", "generation", "std of fitness")
	q.X.Tick.Marker = integerTicks{}
	ls, err := line(xy(x, std), plotutil.Color(3), vg.Points(2.5), false)
	if err != nil {
		return "", "", err
	}
	q.Add(ls)
	q.Y.Min = 0
	fitness, err = pngURI(q, plotW, plotH*0.8)
	return weights, fitness, err
}

func runHeldOutPlot(h HeldOut) (string, error) {
	p := newPlot("Held-out (test split) score", "", "score")
	bars, err := plotter.NewBarChart(plotter.Values{h.InitialBest, h.Winner}, vg.Points(60))
	if err != nil {
		return "", err
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(fmt.Sprintf("best initial #%d", h.InitialID), "winner")
	p.Y.Min = 0
	return pngURI(p, 5*vg.Inch, plotH)
}

// ancestry is the winner and every node it descends from.
func ancestry(nodes []Node, winner int) map[int]Node {
	byID := make(map[int]Node, len(nodes))
	for _, n := range nodes {
		byID[n.ID] = n
	}
	out := map[int]Node{}
	var walk func(id int)
	walk = func(id int) {
		n, ok := byID[id]
		if _, seen := out[id]; !ok || seen {
			return
		}
		out[id] = n
		for _, p := range n.Parents {
			walk(p)
		}
	}
	walk(winner)
	return out
}

// shortOp is the gist of a node's op for a plot label: the merge method and
// the fine-tune's dataset ("ties → addition"), or the origin's last word.
func shortOp(op string) string {
	merge, tune, _ := strings.Cut(op, "→")
	var parts []string
	if m, ok := strings.CutPrefix(strings.TrimSpace(merge), "merge "); ok {
		name, _, _ := strings.Cut(m, "(")
		name, _, _ = strings.Cut(name, " ")
		parts = append(parts, name)
	}
	text := op
	if tune != "" {
		text = tune
	}
	if _, on, ok := strings.Cut(text, " on "); ok {
		parts = append(parts, "ft "+strings.Fields(on)[0])
	}
	if len(parts) == 0 {
		f := strings.Fields(op)
		if len(f) > 0 {
			parts = append(parts, f[0])
		}
	}
	return strings.Join(parts, " → ")
}

// lineagePlot draws the winner's ancestry as a tree: generations left to
// right, one point per model, a line from each parent to its child.
func lineagePlot(nodes []Node, winner int) (string, error) {
	anc := ancestry(nodes, winner)
	if len(anc) == 0 {
		return "", nil
	}
	byGen := map[int][]int{}
	for id, n := range anc {
		byGen[n.Generation] = append(byGen[n.Generation], id)
	}
	pos := map[int]plotter.XY{}
	rows := 0
	for g, ids := range byGen {
		sort.Ints(ids)
		for i, id := range ids {
			pos[id] = plotter.XY{X: float64(g), Y: float64(len(ids)-1)/2 - float64(i)}
		}
		rows = max(rows, len(ids))
	}
	p := newPlot(fmt.Sprintf("Lineage of the winner #%d (a line joins each parent to its child)", winner), "generation", "")
	p.X.Tick.Marker = integerTicks{}
	p.Y.Tick.Marker = plot.ConstantTicks(nil)
	ids := make([]int, 0, len(anc))
	for id := range anc {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		for _, par := range anc[id].Parents {
			if _, ok := anc[par]; !ok {
				continue
			}
			l, err := line(plotter.XYs{pos[par], pos[id]}, color.Gray{Y: 150}, vg.Points(1.2), false)
			if err != nil {
				return "", err
			}
			p.Add(l)
		}
	}
	var pts plotter.XYs
	var labels []string
	for _, id := range ids {
		pts = append(pts, pos[id])
		labels = append(labels, fmt.Sprintf("#%d %s %.3f", id, shortOp(anc[id].Op), anc[id].Fitness))
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return "", err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(0), Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
	win, err := plotter.NewScatter(plotter.XYs{pos[winner]})
	if err != nil {
		return "", err
	}
	win.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(1), Radius: vg.Points(6), Shape: draw.CircleGlyph{}}
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
	if err != nil {
		return "", err
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font.Size = vg.Points(8)
	}
	lab.Offset = vg.Point{X: vg.Points(6), Y: vg.Points(3)}
	p.Add(sc, win, lab)
	p.Legend.Add("winner", win)
	// Room for the labels right of the last generation and above/below.
	p.X.Max += 0.9
	p.Y.Min, p.Y.Max = p.Y.Min-0.5, p.Y.Max+0.5
	h := max(plotH, vg.Length(rows)*0.45*vg.Inch)
	return pngURI(p, plotW+2*vg.Inch, h)
}

// ---------------------------------------------------------------- experiment plots

// experimentFitnessPlot: per arm the mean over seeds of the best fitness
// with its CI band, and each seed's curve faintly.
func experimentFitnessPlot(e Experiment) (string, error) {
	p := newPlot("Best fitness per generation (validation), mean over seeds with CI band", "generation", "best fitness")
	p.X.Tick.Marker = integerTicks{}
	for i, a := range e.Arms {
		c := plotutil.Color(i)
		for _, s := range a.Seeds {
			if len(s.Best) == 0 {
				continue
			}
			l, err := line(xy(gens(len(s.Best)), s.Best), translucent(c, 90), vg.Points(0.8), false)
			if err != nil {
				return "", err
			}
			p.Add(l)
		}
		if len(a.BestCurve) == 0 {
			continue
		}
		var x, m, lo, hi []float64
		for _, b := range a.BestCurve {
			x, m, lo, hi = append(x, float64(b.Generation)), append(m, b.Mean), append(lo, b.Lo), append(hi, b.Hi)
		}
		bd, err := band(x, lo, hi, c)
		if err != nil {
			return "", err
		}
		l, err := line(xy(x, m), c, vg.Points(2.5), false)
		if err != nil {
			return "", err
		}
		p.Add(bd, l)
		p.Legend.Add(a.Name, l, bd)
	}
	return pngURI(p, plotW, plotH*1.2)
}

// experimentHeldOutPlot: per arm the mean held-out score with its CI as an
// error bar, and each seed's score as a dot beside it.
func experimentHeldOutPlot(e Experiment) (string, error) {
	p := newPlot("Held-out (test) score of each arm's winners: mean and CI over seeds, dots = seeds", "", "held-out score")
	names := make([]string, len(e.Arms))
	for i, a := range e.Arms {
		names[i] = a.Name
		c := plotutil.Color(i)
		mean := plotter.XYs{{X: float64(i), Y: a.HeldOut.Mean}}
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{mean, plotter.YErrors{{Low: a.HeldOut.Mean - a.HeldOut.Lo, High: a.HeldOut.Hi - a.HeldOut.Mean}}})
		if err != nil {
			return "", err
		}
		eb.LineStyle.Color, eb.LineStyle.Width, eb.CapWidth = c, vg.Points(2), vg.Points(14)
		m, err := plotter.NewScatter(mean)
		if err != nil {
			return "", err
		}
		m.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(5), Shape: draw.BoxGlyph{}}
		p.Add(eb, m)
		var dots plotter.XYs
		for k, s := range a.Seeds {
			dots = append(dots, plotter.XY{X: float64(i) + 0.18 + 0.04*float64(k%5), Y: s.HeldOut})
		}
		if len(dots) > 0 {
			d, err := plotter.NewScatter(dots)
			if err != nil {
				return "", err
			}
			d.GlyphStyle = draw.GlyphStyle{Color: translucent(c, 160), Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
			p.Add(d)
		}
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(e.Arms))-0.4
	return pngURI(p, plotW, plotH)
}

// experimentDiversityPlot: each seed's diversity curve, coloured by arm;
// "" when no seed measured diversity.
func experimentDiversityPlot(e Experiment) (string, error) {
	p := newPlot("Diversity per generation: mean pairwise distance 1 − cos of task vectors (one line per seed)", "generation", "distance")
	p.Legend.Top = true
	p.X.Tick.Marker = integerTicks{}
	any := false
	for i, a := range e.Arms {
		c := plotutil.Color(i)
		var first *plotter.Line
		for _, s := range a.Seeds {
			if len(s.Diversity) == 0 {
				continue
			}
			l, err := line(xy(gens(len(s.Diversity)), s.Diversity), c, vg.Points(1.2), false)
			if err != nil {
				return "", err
			}
			p.Add(l)
			if first == nil {
				first = l
			}
		}
		if first != nil {
			p.Legend.Add(a.Name, first)
			any = true
		}
	}
	if !any {
		return "", nil
	}
	p.Y.Min = 0
	return pngURI(p, plotW, plotH)
}

func gens(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i)
	}
	return x
}

func xy(x, y []float64) plotter.XYs {
	pts := make(plotter.XYs, len(x))
	for i := range x {
		pts[i] = plotter.XY{X: x[i], Y: y[i]}
	}
	return pts
}
