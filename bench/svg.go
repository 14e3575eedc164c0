package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Point is one data point of a line chart.
type Point struct{ X, Y float64 }

// Series is one named line.
type Series struct {
	Name   string
	Points []Point
}

// Chart is one panel of a line chart SVG.
type Chart struct {
	Title, XLabel, YLabel string
	LogX                  bool
	Series                []Series
}

// Bar chart input: one group per label, one value per series (NaN = none).
type BarChart struct {
	Title, YLabel string
	Labels        []string    // one per group (run)
	SeriesNames   []string    // one per bar within a group
	Values        [][]float64 // [group][series]
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// num formats a value for axis ticks and labels.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6 && math.Mod(v, 1e5) == 0:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e4 && math.Mod(v, 1e3) == 0:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	case a >= 100 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; ; v += step {
		out = append(out, v)
		if v >= hi-step*1e-9 {
			break
		}
	}
	return out
}

const (
	chartW, panelH         = 760, 360
	marginL, marginR       = 80, 190
	marginT, marginB       = 44, 56
	plotW                  = chartW - marginL - marginR
	plotH                  = panelH - marginT - marginB
	svgHeader              = `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">` + "\n"
	svgBackground          = `<rect x="0" y="0" width="%d" height="%d" fill="white"/>` + "\n"
	defaultTicks           = 6
	markerRadius           = 4
	legendSwatch, legendDy = 14, 20
)

// WriteLineCharts writes the charts as one SVG, panels stacked vertically.
// Every data point is a <circle class="point"> carrying data-series, data-x
// and data-y attributes and a <title> tooltip.
func WriteLineCharts(w io.Writer, charts []Chart) error {
	var b strings.Builder
	h := panelH * max(len(charts), 1)
	fmt.Fprintf(&b, svgHeader, chartW, h, chartW, h)
	fmt.Fprintf(&b, svgBackground, chartW, h)
	for i, c := range charts {
		writePanel(&b, c, float64(i*panelH))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writePanel(b *strings.Builder, c Chart, top float64) {
	x0, y0 := float64(marginL), top+marginT
	fmt.Fprintf(b, `<g class="panel">`+"\n")
	fmt.Fprintf(b, `<text x="%d" y="%.0f" font-size="15" font-weight="bold" text-anchor="middle">%s</text>`+"\n", chartW/2, top+24, esc(c.Title))
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			xmin, xmax, ymax = math.Min(xmin, p.X), math.Max(xmax, p.X), math.Max(ymax, p.Y)
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	logX := c.LogX && xmin > 0
	fx := func(v float64) float64 { return v }
	if logX {
		fx = math.Log10
	}
	lo, hi := fx(xmin), fx(xmax)
	if hi-lo < 1e-12 {
		lo, hi = lo-1, hi+1
		if !logX && xmin >= 0 {
			lo = math.Max(lo, 0)
		}
	} else {
		padX := (hi - lo) * 0.05
		lo, hi = lo-padX, hi+padX
	}
	yt := niceTicks(0, math.Max(ymax*1.05, 1e-9), defaultTicks)
	ytop := yt[len(yt)-1]
	px := func(v float64) float64 { return x0 + (fx(v)-lo)/(hi-lo)*plotW }
	py := func(v float64) float64 { return y0 + plotH - v/ytop*plotH }

	// Grid, axes and ticks.
	for _, t := range yt {
		y := py(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x0+plotW, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+4, esc(num(t)))
	}
	var xt []float64
	distinct := map[float64]bool{}
	for _, s := range c.Series {
		for _, p := range s.Points {
			distinct[p.X] = true
		}
	}
	if len(distinct) <= 10 {
		for x := range distinct {
			xt = append(xt, x)
		}
		sort.Float64s(xt)
	} else if logX {
		for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if fx(v) >= lo && fx(v) <= hi {
					xt = append(xt, v)
				}
			}
		}
	} else {
		for _, t := range niceTicks(lo, hi, defaultTicks) {
			if t >= lo && t <= hi {
				xt = append(xt, t)
			}
		}
	}
	for _, t := range xt {
		x := px(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x, y0, x, y0+plotH)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, y0+plotH+16, esc(num(t)))
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", x0, y0, plotW, plotH)
	xl := c.XLabel
	if logX {
		xl += " (log scale)"
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x0+plotW/2, y0+plotH+40, esc(xl))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		x0-56, y0+plotH/2, x0-56, y0+plotH/2, esc(c.YLabel))

	// Lines, points, legend.
	for i, s := range c.Series {
		col := palette[i%len(palette)]
		pts := append([]Point(nil), s.Points...)
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		if len(pts) > 1 {
			var path []string
			for _, p := range pts {
				path = append(path, fmt.Sprintf("%.1f,%.1f", px(p.X), py(p.Y)))
			}
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(path, " "))
		}
		for _, p := range pts {
			fmt.Fprintf(b, `<circle class="point" cx="%.1f" cy="%.1f" r="%d" fill="%s" data-series="%s" data-x="%s" data-y="%s"><title>%s: %s = %s, %s = %.2f</title></circle>`+"\n",
				px(p.X), py(p.Y), markerRadius, col, esc(s.Name), strconv.FormatFloat(p.X, 'g', -1, 64), strconv.FormatFloat(p.Y, 'f', 4, 64),
				esc(s.Name), esc(c.XLabel), esc(num(p.X)), esc(c.YLabel), p.Y)
		}
		ly := y0 + float64(i*legendDy)
		lx := x0 + plotW + 16
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="%s"/>`+"\n", lx, ly, legendSwatch, legendSwatch, col)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+legendSwatch+6, ly+11, esc(s.Name))
	}
	b.WriteString("</g>\n")
}

// WriteBarChart writes a grouped bar chart SVG: one group per label, one
// bar per series, each bar a <rect class="bar"> with data-label,
// data-series and data-value attributes, its value printed above it.
func WriteBarChart(w io.Writer, c BarChart) error {
	var b strings.Builder
	fmt.Fprintf(&b, svgHeader, chartW, panelH+40, chartW, panelH+40)
	fmt.Fprintf(&b, svgBackground, chartW, panelH+40)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold" text-anchor="middle">%s</text>`+"\n", chartW/2, esc(c.Title))
	x0, y0 := float64(marginL), float64(marginT)
	ymax := 0.0
	for _, g := range c.Values {
		for _, v := range g {
			if !math.IsNaN(v) {
				ymax = math.Max(ymax, v)
			}
		}
	}
	yt := niceTicks(0, math.Max(ymax*1.1, 1e-9), defaultTicks)
	ytop := yt[len(yt)-1]
	py := func(v float64) float64 { return y0 + plotH - v/ytop*plotH }
	for _, t := range yt {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, py(t), x0+plotW, py(t))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, py(t)+4, esc(num(t)))
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", x0, y0, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		x0-56, y0+plotH/2, x0-56, y0+plotH/2, esc(c.YLabel))
	ng, ns := len(c.Labels), max(len(c.SeriesNames), 1)
	if ng > 0 {
		gw := float64(plotW) / float64(ng)
		bw := gw * 0.8 / float64(ns)
		for g, label := range c.Labels {
			gx := x0 + gw*float64(g) + gw*0.1
			for s := 0; s < ns && s < len(c.Values[g]); s++ {
				v := c.Values[g][s]
				if math.IsNaN(v) {
					continue
				}
				name := ""
				if s < len(c.SeriesNames) {
					name = c.SeriesNames[s]
				}
				x := gx + bw*float64(s)
				fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" data-label="%s" data-series="%s" data-value="%s"><title>%s, %s: %.2f</title></rect>`+"\n",
					x, py(v), bw, y0+plotH-py(v), palette[s%len(palette)], esc(label), esc(name), strconv.FormatFloat(v, 'f', 4, 64), esc(label), esc(name), v)
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.1f</text>`+"\n", x+bw/2, py(v)-3, v)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x0+gw*float64(g)+gw/2, y0+plotH+16, esc(label))
		}
	}
	for s, name := range c.SeriesNames {
		lx, ly := x0+plotW+16, y0+float64(s*legendDy)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="%s"/>`+"\n", lx, ly, legendSwatch, legendSwatch, palette[s%len(palette)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+legendSwatch+6, ly+11, esc(name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// ResultCharts chooses what to draw for a run: in seed mode decode and
// prefill t/s against prompt size (one line per output length); with
// several depths t/s against depth (one line per test); otherwise t/s of
// pp tests against prompt size and of tg tests against output length.
func ResultCharts(results []*Result, model string) []Chart {
	split := false
	depths := map[int]bool{}
	for _, r := range results {
		split = split || r.Inst.Split
		depths[r.Inst.Depth] = true
	}
	title := model
	if split {
		gen := map[int]*Series{}
		pre := map[int]*Series{}
		var order []int
		for _, r := range results {
			if !r.Inst.Split {
				continue
			}
			g := r.Inst.NGen
			if gen[g] == nil {
				gen[g] = &Series{Name: fmt.Sprintf("%d output tokens", g)}
				pre[g] = &Series{Name: fmt.Sprintf("%d output tokens", g)}
				order = append(order, g)
			}
			if ts := r.GenTS(); len(ts) > 0 {
				gen[g].Points = append(gen[g].Points, Point{float64(r.Inst.NPrompt), mean(ts)})
			}
			if ts := r.PromptTS(); len(ts) > 0 {
				pre[g].Points = append(pre[g].Points, Point{float64(r.Inst.NPrompt), mean(ts)})
			}
		}
		sort.Ints(order)
		var gs, ps []Series
		for _, g := range order {
			gs = append(gs, *gen[g])
			ps = append(ps, *pre[g])
		}
		return []Chart{
			{Title: "Decode speed vs prompt size — " + title, XLabel: "prompt tokens", YLabel: "decode tokens/s", LogX: true, Series: gs},
			{Title: "Prefill speed vs prompt size — " + title, XLabel: "prompt tokens", YLabel: "prefill tokens/s", LogX: true, Series: ps},
		}
	}
	if len(depths) > 1 {
		by := map[string]*Series{}
		var order []string
		for _, r := range results {
			in := r.Inst
			in.Depth = 0
			name := in.Name()
			if by[name] == nil {
				by[name] = &Series{Name: name}
				order = append(order, name)
			}
			by[name].Points = append(by[name].Points, Point{float64(r.Inst.Depth), r.AvgTS()})
		}
		var ss []Series
		for _, n := range order {
			ss = append(ss, *by[n])
		}
		return []Chart{{Title: "Throughput vs context depth — " + title, XLabel: "depth (tokens already in the KV cache)", YLabel: "tokens/s", Series: ss}}
	}
	pp := Series{Name: "prompt processing (pp)"}
	tg := Series{Name: "text generation (tg)"}
	pg := Series{Name: "prompt + generation (pg)"}
	for _, r := range results {
		switch {
		case r.Inst.NGen == 0:
			pp.Points = append(pp.Points, Point{float64(r.Inst.NPrompt), r.AvgTS()})
		case r.Inst.NPrompt == 0:
			tg.Points = append(tg.Points, Point{float64(r.Inst.NGen), r.AvgTS()})
		default:
			pg.Points = append(pg.Points, Point{float64(r.Inst.NPrompt + r.Inst.NGen), r.AvgTS()})
		}
	}
	var ss []Series
	for _, s := range []Series{pp, tg, pg} {
		if len(s.Points) > 0 {
			ss = append(ss, s)
		}
	}
	return []Chart{{Title: "Throughput vs tokens — " + title, XLabel: "tokens (prompt size for pp, output length for tg)", YLabel: "tokens/s", LogX: true, Series: ss}}
}
