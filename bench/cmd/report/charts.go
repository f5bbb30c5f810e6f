package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writeCharts draws the charts into dir, each as SVG and PNG, and returns
// their names (without extension).
func writeCharts(s *Set, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	save := func(name string, p *plot.Plot, w, h vg.Length) error {
		for _, ext := range []string{".svg", ".png"} {
			if err := p.Save(w, h, filepath.Join(dir, name+ext)); err != nil {
				return fmt.Errorf("chart %s%s: %w", name, ext, err)
			}
		}
		names = append(names, name)
		return nil
	}
	for _, shape := range []string{"flat", "tree"} {
		p, err := lifecycleChart(s, shape)
		if err != nil {
			return nil, err
		}
		if err := save("lifecycle-"+shape, p, 7*vg.Inch, 5*vg.Inch); err != nil {
			return nil, err
		}
	}
	p, err := residentChart(s)
	if err != nil {
		return nil, err
	}
	if err := save("resident", p, 8*vg.Inch, 4.5*vg.Inch); err != nil {
		return nil, err
	}
	if p, err = loopChart(s); err != nil {
		return nil, err
	}
	if err := save("loop", p, 7*vg.Inch, 4.5*vg.Inch); err != nil {
		return nil, err
	}
	return names, nil
}

// lifecycleChart is scenario (a): time per service against n, log axes, one
// line per implementation.
func lifecycleChart(s *Set, shape string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Build + start + stop of n trivial services (%s): time per service", shape)
	p.X.Label.Text = "n (services under one root)"
	p.Y.Label.Text = "time per service (µs)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	var args []any
	maxY := 0.0
	for _, impl := range impls {
		var pts plotter.XYs
		for _, n := range s.sizes("Lifecycle", "shape="+shape+"/impl="+impl+"/", "n") {
			if v, ok := s.median("Lifecycle", "ns/service", "shape="+shape, "impl="+impl, "n="+strconv.Itoa(n)); ok {
				pts = append(pts, plotter.XY{X: float64(n), Y: v / 1e3})
				maxY = max(maxY, v/1e3)
			}
		}
		if len(pts) > 0 {
			args = append(args, show(impl), pts)
		}
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, err
	}
	p.Y.Max = maxY * 30 // room for the legend above the lines
	return p, nil
}

// residentChart is scenario (b): resident bytes per service, trivial and
// full, one group of bars per implementation.
func residentChart(s *Set) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Resident memory per idle service (heap + stacks after GC)"
	if ns := s.sizes("Resident", "kind=full/", "n"); len(ns) > 0 {
		p.Title.Text += fmt.Sprintf(", n = %d", ns[len(ns)-1])
	}
	p.Y.Label.Text = "KiB per service"
	p.Legend.Top, p.Legend.Left = true, true
	kinds := []string{"trivial", "full"}
	maxY := 0.0
	w := vg.Points(18)
	var labels []string
	for _, impl := range checkedImpls {
		if impl == "coreservice-check1s" {
			labels = append(labels, "coreservice\n(check Timeout 1 s)")
			continue
		}
		labels = append(labels, show(impl))
	}
	var failXY plotter.XYs
	var failText []string
	for i, kind := range kinds {
		var vals plotter.Values
		for j, impl := range checkedImpls {
			v := 0.0
			if ns := s.sizes("Resident", "kind="+kind+"/", "n"); len(ns) > 0 {
				cfg := []string{"kind=" + kind, "impl=" + impl, "n=" + strconv.Itoa(ns[len(ns)-1])}
				v, _ = s.median("Resident", "resident-B/service", cfg...)
				if f, runs := s.failures("Resident", cfg...); f > 0 {
					failXY = append(failXY, plotter.XY{X: float64(j) + float64(2*i-1)*0.12, Y: 0})
					failText = append(failText, fmt.Sprintf("%s: failed in %d/%d", kind, f, runs))
				}
			}
			vals = append(vals, v/1024)
			maxY = max(maxY, v/1024)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(2*i-1) * w / 2
		p.Add(bars)
		p.Legend.Add(kind+" service", bars)
	}
	if len(failXY) > 0 {
		for i := range failXY {
			failXY[i].Y = maxY * 0.05
		}
		lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: failXY, Labels: failText})
		if err != nil {
			return nil, err
		}
		for i := range lbl.TextStyle {
			lbl.TextStyle[i].Rotation = math.Pi / 2
			lbl.TextStyle[i].Color = color.RGBA{R: 200, A: 255}
		}
		p.Add(lbl)
	}
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.7, float64(len(checkedImpls))-0.3
	p.Y.Min, p.Y.Max = 0, maxY*1.3
	p.Add(plotter.NewGrid())
	return p, nil
}

// loopChart is scenario (c): cost per run of each loop, with its value.
func loopChart(s *Set) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Periodic loop: cost per empty run"
	p.Y.Label.Text = "ns per run"
	short := map[string]string{"bare": "bare loop", "coreservice": "coreservice task\ntelemetry off",
		"coreservice-noop": "coreservice task\nno-op providers", "coreservice-sdk": "coreservice task\nSDK sampling all",
		"suture": "suture\nrestart loop"}
	maxY := 0.0
	var vals plotter.Values
	var labels []string
	var xys plotter.XYs
	var texts []string
	for i, v := range loopVariants {
		x, _ := s.median("Loop", "ns/run", "impl="+v)
		vals = append(vals, x)
		maxY = max(maxY, x)
		labels = append(labels, short[v])
		xys = append(xys, plotter.XY{X: float64(i), Y: x})
		texts = append(texts, dur(x))
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return nil, err
	}
	bars.Color = color.RGBA{R: 70, G: 110, B: 180, A: 255}
	bars.LineStyle.Width = 0
	p.Add(bars)
	lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return nil, err
	}
	for i := range lbl.TextStyle {
		lbl.TextStyle[i].XAlign = -0.5 // centred over the bar
		lbl.Offset = vg.Point{Y: vg.Points(3)}
	}
	p.Add(lbl)
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.7, float64(len(loopVariants))-0.3
	p.Y.Min, p.Y.Max = 0, maxY*1.15
	p.Add(plotter.NewGrid())
	return p, nil
}
