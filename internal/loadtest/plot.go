package loadtest

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot draws the acknowledgement latency of each report as a cumulative
// distribution on a log time axis, with the platforms' 3-second deadline as
// a vertical line, and saves it as a PNG, the legend under the chart. A teacher reads it as: the further left a curve, the faster
// students are acknowledged; anything right of the red line failed.
func Plot(file string, reports []*Report) error {
	p := plot.New()
	p.Title.Text = "classbot: how fast each command is acknowledged"
	p.X.Label.Text = "acknowledgement latency (seconds, log scale)"
	p.Y.Label.Text = "share of commands acknowledged within x"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	leg := plot.NewLegend() // drawn under the chart, so it hides no curve
	leg.Top, leg.Left = true, true
	leg.XOffs = vg.Points(60)
	leg.ThumbnailWidth = vg.Points(24)
	p.Add(plotter.NewGrid())

	lo, hi := 1e-3, 10.0
	colors := []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
		color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // orange
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, // purple
	}
	for i, r := range reports {
		s := r.ackSamples
		if len(s) == 0 {
			continue
		}
		lo = math.Min(lo, math.Max(s[0].Seconds(), 1e-5))
		hi = math.Max(hi, s[len(s)-1].Seconds())
		pts := cdfPoints(s, 2000)
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = colors[i%len(colors)]
		l.Width = vg.Points(2)
		p.Add(l)
		p99 := quantile(s, .99)
		text := fmt.Sprintf("%s: p50 %s, p99 %s, %d/%d in time", labelOf(r), fmtMs(ms(quantile(s, .5))), fmtMs(ms(p99)), len(s)-r.Late, r.Sent)
		if r.CommitsPerInteraction != nil {
			text += fmt.Sprintf(", %.2f PostgreSQL commits/interaction", *r.CommitsPerInteraction)
		}
		if r.DBLatency != "" && !strings.Contains(text, r.DBLatency) {
			text += ", database +" + r.DBLatency + " each way"
		}
		leg.Add(text, l)
	}
	p.X.Min, p.X.Max = lo/1.5, hi*1.5

	deadline, err := plotter.NewLine(plotter.XYs{{X: Deadline.Seconds(), Y: 0}, {X: Deadline.Seconds(), Y: 1}})
	if err != nil {
		return err
	}
	deadline.Color = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	deadline.Width = vg.Points(2)
	deadline.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(deadline)
	leg.Add("Slack and Discord deadline: 3 s", deadline)

	// The legend gets a fifth of an inch per line (at least 0.8 inch).
	legendH := max(vg.Inch*4/5, vg.Length(len(reports)+2)*vg.Inch/5)
	const w = 9 * vg.Inch
	h := 5*vg.Inch + legendH
	img := vgimg.New(w, h)
	dc := draw.New(img)
	img.SetColor(color.White)
	img.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, 0, 0, legendH, 0))
	leg.Draw(draw.Crop(dc, 0, 0, 0, -(h - legendH)))
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func labelOf(r *Report) string {
	if r.Label != "" {
		return r.Label
	}
	return r.Mode
}

// cdfPoints samples the empirical CDF of sorted at most n points.
func cdfPoints(sorted []time.Duration, n int) plotter.XYs {
	step := max(1, len(sorted)/n)
	pts := make(plotter.XYs, 0, len(sorted)/step+2)
	for i := 0; i < len(sorted); i += step {
		pts = append(pts, plotter.XY{X: math.Max(sorted[i].Seconds(), 1e-5), Y: float64(i+1) / float64(len(sorted))})
	}
	last := sorted[len(sorted)-1]
	pts = append(pts, plotter.XY{X: math.Max(last.Seconds(), 1e-5), Y: 1})
	return pts
}
