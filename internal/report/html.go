package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
)

const style = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0} .verdict{font-size:1.1rem;background:#f3f6fb;border-left:4px solid #4a78c2;padding:.6rem 1rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
th{background:#fafafa} td.l,th.l{text-align:left} img{max-width:100%;display:block;margin:.6rem 0}
ul.tree{list-style:none;padding-left:1.2rem;border-left:1px dotted #bbb} ul.tree li{margin:.15rem 0}
.win{font-weight:600;color:#b0361f} .mono{font-family:ui-monospace,monospace;font-size:.85em;color:#555}
`

var funcs = template.FuncMap{
	"f4":  func(v float64) string { return fmt.Sprintf("%.4f", v) },
	"pct": func(v float64) string { return fmt.Sprintf("%.1f %%", 100*v) },
	"img": func(s string) template.URL { return template.URL(s) },
	"ci": func(i Interval) string {
		return fmt.Sprintf("%.4f [%.4f, %.4f]", i.Mean, i.Lo, i.Hi)
	},
	"num":  func(v int64) string { return groupDigits(v) },
	"last": func(v []float64) int { return len(v) - 1 },
}

func groupDigits(v int64) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

var runTmpl = template.Must(template.New("run").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>EvoMerge run {{.R.Name}}</title>
<style>{{.Style}}</style></head><body>
<h1>EvoMerge run {{.R.Name}}</h1>
<p class="sub">{{if .R.StopReason}}finished: {{.R.StopReason}} · {{end}}{{len .R.Generations}} generations recorded{{if .R.UIURL}} · <a href="{{.R.UIURL}}">web UI</a>{{end}}</p>
{{with .R.HeldOut}}<p class="verdict">Held-out (test split): winner <b>{{f4 .Winner}}</b> vs best initial model #{{.InitialID}} <b>{{f4 .InitialBest}}</b> —
{{if gt .Winner .InitialBest}}the winner <b>beats</b> the best initial model{{else}}the winner does <b>not</b> beat the best initial model{{end}}.
One run gives one score per model: no interval; an experiment over seeds gives them.</p>{{end}}
<h2>Fitness</h2>
<img alt="fitness per generation" src="{{img .Fitness}}">
{{if .Weights}}<h2>Diversity</h2>
<p>{{if .R.Ancestor}}Task vectors are measured from {{.R.Ancestor}}.{{end}} A distance of 0 means the members moved in the same direction from it, 1 orthogonal directions.</p>
<img alt="diversity per generation" src="{{img .Weights}}">
<img alt="fitness spread per generation" src="{{img .Spread}}">{{end}}
{{if .HeldOut}}<h2>Held-out score</h2><img alt="held-out scores" src="{{img .HeldOut}}">{{end}}
<h2>Generations</h2>
<table><tr><th>gen</th><th>best</th><th>id</th><th>mean</th><th>children</th><th>dropped</th><th>distance mean [min, max]</th><th>fitness std</th><th>fitness min–max</th></tr>
{{range .R.Generations}}<tr><td>{{.Generation}}</td><td>{{f4 .Best}}</td><td>#{{.BestID}}</td><td>{{f4 .Mean}}</td><td>{{.Children}}</td><td>{{.Dropped}}</td>
{{with .Diversity}}<td>{{f4 .MeanDistance}} [{{f4 .MinDistance}}, {{f4 .MaxDistance}}]</td><td>{{f4 .FitnessStd}}</td><td>{{f4 .FitnessMin}}–{{f4 .FitnessMax}}</td>{{else}}<td>–</td><td>–</td><td>–</td>{{end}}</tr>
{{end}}</table>
{{if .Lineage}}<h2>Lineage of the winner</h2>
<img alt="lineage tree" src="{{img .Lineage}}">
{{.Tree}}{{end}}
{{if .R.Published}}<p>Winner published at <span class="mono">{{.R.Published}}</span>.</p>{{end}}
</body></html>
`))

var expTmpl = template.Must(template.New("exp").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.E.Title}}</title>
<style>{{.Style}}</style></head><body>
<h1>{{.E.Title}}</h1>
{{if .E.Method}}<p class="sub">{{.E.Method}}</p>{{end}}
{{range .E.Summary}}<p class="verdict">{{.}}</p>{{end}}
<h2>Held-out scores per arm</h2>
<img alt="held-out per arm" src="{{img .HeldOut}}">
<table><tr><th class="l">arm</th><th>seeds</th><th>held-out mean [CI]</th><th>training tokens</th><th>scored tokens</th><th>budget per seed</th></tr>
{{range .E.Arms}}<tr><td class="l">{{.Name}}</td><td>{{len .Seeds}}</td><td>{{ci .HeldOut}}</td><td>{{num .TrainTokens}}</td><td>{{num .ScoredTokens}}</td><td>{{if .Budget}}{{num .Budget}}{{else}}–{{end}}</td></tr>
{{end}}</table>
{{if .E.Comparisons}}<h2>Paired differences over seeds</h2>
<table><tr><th class="l">A − B</th><th>mean [CI]</th><th>n</th><th class="l">verdict</th></tr>
{{range .E.Comparisons}}<tr><td class="l">{{.A}} − {{.B}}</td><td>{{ci .Diff}}</td><td>{{.Diff.N}}</td><td class="l">{{.Verdict}}</td></tr>
{{end}}</table>{{end}}
<h2>Fitness per generation</h2>
<img alt="fitness curves per arm" src="{{img .Fitness}}">
{{if .Diversity}}<h2>Diversity per generation</h2><img alt="diversity per arm" src="{{img .Diversity}}">{{end}}
<h2>Seeds</h2>
<table><tr><th class="l">arm</th><th>seed</th><th class="l">run</th><th>generations</th><th>final best</th><th>held-out</th></tr>
{{range .E.Arms}}{{$a := .Name}}{{range .Seeds}}<tr><td class="l">{{$a}}</td><td>{{.Seed}}</td><td class="l mono">{{.Run}}</td><td>{{len .Best}}</td><td>{{if .Best}}{{f4 (index .Best (last .Best))}}{{end}}</td><td>{{f4 .HeldOut}}</td></tr>
{{end}}{{end}}</table>
</body></html>
`))

// RenderRun writes the run report as one self-contained HTML document.
func RenderRun(w io.Writer, r Run) error {
	if err := checkRun(r); err != nil {
		return err
	}
	v := struct {
		R                                 Run
		Style                             template.CSS
		Fitness, Weights, Spread, HeldOut string
		Lineage                           string
		Tree                              template.HTML
	}{R: r, Style: template.CSS(style)}
	var err error
	if v.Fitness, err = runFitnessPlot(r); err != nil {
		return fmt.Errorf("report: fitness plot: %w", err)
	}
	if v.Weights, v.Spread, err = runDiversityPlot(r); err != nil {
		return fmt.Errorf("report: diversity plot: %w", err)
	}
	if r.HeldOut != nil {
		if v.HeldOut, err = runHeldOutPlot(*r.HeldOut); err != nil {
			return fmt.Errorf("report: held-out plot: %w", err)
		}
	}
	if len(r.Lineage) > 0 {
		if v.Lineage, err = lineagePlot(r.Lineage, r.WinnerID); err != nil {
			return fmt.Errorf("report: lineage plot: %w", err)
		}
		v.Tree = lineageTree(r.Lineage, r.WinnerID)
	}
	return runTmpl.Execute(w, v)
}

// RenderExperiment writes the experiment report as one self-contained HTML document.
func RenderExperiment(w io.Writer, e Experiment) error {
	if err := checkExperiment(e); err != nil {
		return err
	}
	v := struct {
		E                           Experiment
		Style                       template.CSS
		Fitness, HeldOut, Diversity string
	}{E: e, Style: template.CSS(style)}
	var err error
	if v.Fitness, err = experimentFitnessPlot(e); err != nil {
		return fmt.Errorf("report: fitness plot: %w", err)
	}
	if v.HeldOut, err = experimentHeldOutPlot(e); err != nil {
		return fmt.Errorf("report: held-out plot: %w", err)
	}
	if v.Diversity, err = experimentDiversityPlot(e); err != nil {
		return fmt.Errorf("report: diversity plot: %w", err)
	}
	return expTmpl.Execute(w, v)
}

// lineageTree is the winner's ancestry as nested lists, most recent first:
// each model with how it was made, its parents below it.
func lineageTree(nodes []Node, winner int) template.HTML {
	anc := ancestry(nodes, winner)
	var b strings.Builder
	shown := map[int]bool{}
	var walk func(id int)
	walk = func(id int) {
		n := anc[id]
		cls := ""
		if id == winner {
			cls = ` class="win"`
		}
		fmt.Fprintf(&b, "<li><span%s>#%d</span> gen %d · fitness %.4f · %s", cls, n.ID, n.Generation, n.Fitness, template.HTMLEscapeString(n.Op))
		if shown[id] {
			b.WriteString(" <i>(shown above)</i></li>")
			return
		}
		shown[id] = true
		parents := append([]int(nil), n.Parents...)
		sort.Ints(parents)
		var kids []int
		for _, p := range parents {
			if _, ok := anc[p]; ok {
				kids = append(kids, p)
			}
		}
		if len(kids) > 0 {
			b.WriteString(`<ul class="tree">`)
			for _, p := range kids {
				walk(p)
			}
			b.WriteString("</ul>")
		}
		b.WriteString("</li>")
	}
	if _, ok := anc[winner]; !ok {
		return ""
	}
	b.WriteString(`<ul class="tree">`)
	walk(winner)
	b.WriteString("</ul>")
	return template.HTML(b.String())
}

// ---------------------------------------------------------------- input checks

type checker struct{ errs []string }

func (c *checker) num(field string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		c.errs = append(c.errs, fmt.Sprintf("%s is %v", field, v))
	}
}

func (c *checker) err(what string) error {
	if len(c.errs) == 0 {
		return nil
	}
	return fmt.Errorf("report: %s: %s", what, strings.Join(c.errs, "; "))
}

func checkRun(r Run) error {
	c := &checker{}
	if len(r.Generations) == 0 {
		c.errs = append(c.errs, "generations: empty")
	}
	for i, g := range r.Generations {
		f := fmt.Sprintf("generations[%d]", i)
		c.num(f+".best", g.Best)
		c.num(f+".mean", g.Mean)
		if d := g.Diversity; d != nil {
			for _, x := range []struct {
				n string
				v float64
			}{{"mean_distance", d.MeanDistance}, {"min_distance", d.MinDistance}, {"max_distance", d.MaxDistance},
				{"fitness_std", d.FitnessStd}, {"fitness_min", d.FitnessMin}, {"fitness_max", d.FitnessMax}} {
				c.num(f+".diversity."+x.n, x.v)
			}
		}
	}
	if h := r.HeldOut; h != nil {
		c.num("held_out.winner", h.Winner)
		c.num("held_out.initial_best", h.InitialBest)
	}
	for i, n := range r.Lineage {
		c.num(fmt.Sprintf("lineage[%d].fitness", i), n.Fitness)
	}
	return c.err("run " + r.Name)
}

func checkExperiment(e Experiment) error {
	c := &checker{}
	if len(e.Arms) == 0 {
		c.errs = append(c.errs, "arms: empty")
	}
	for i, a := range e.Arms {
		f := fmt.Sprintf("arms[%d]", i)
		if strings.TrimSpace(a.Name) == "" {
			c.errs = append(c.errs, f+".name: empty")
		}
		c.interval(f+".held_out", a.HeldOut)
		for k, b := range a.BestCurve {
			g := fmt.Sprintf("%s.best_curve[%d]", f, k)
			c.num(g+".mean", b.Mean)
			c.num(g+".lo", b.Lo)
			c.num(g+".hi", b.Hi)
		}
		for k, s := range a.Seeds {
			g := fmt.Sprintf("%s.seeds[%d]", f, k)
			c.num(g+".held_out", s.HeldOut)
			for j, v := range s.Best {
				c.num(fmt.Sprintf("%s.best[%d]", g, j), v)
			}
			for j, v := range s.Diversity {
				c.num(fmt.Sprintf("%s.diversity[%d]", g, j), v)
			}
		}
	}
	for i, cm := range e.Comparisons {
		c.interval(fmt.Sprintf("comparisons[%d].diff", i), cm.Diff)
	}
	return c.err("experiment " + e.Title)
}

func (c *checker) interval(field string, i Interval) {
	c.num(field+".mean", i.Mean)
	c.num(field+".lo", i.Lo)
	c.num(field+".hi", i.Hi)
	if i.Lo > i.Hi {
		c.errs = append(c.errs, fmt.Sprintf("%s: lo %g above hi %g", field, i.Lo, i.Hi))
	}
}
