package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Palette is the line colours, in order (Okabe and Ito's colour-blind-safe
// set: blue, vermillion, bluish green, orange, reddish purple, sky blue,
// black).
var Palette = []color.RGBA{
	{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255}, {230, 159, 0, 255},
	{204, 121, 167, 255}, {86, 180, 233, 255}, {0, 0, 0, 255},
}

// Line is one series of a line plot: points (X[i], Y[i]) joined in order,
// each marked with a square.
type Line struct {
	Name  string
	Color color.RGBA // zero: the Palette colour of the line's index
	X, Y  []float64
	// Err, when not nil, has one entry per point: a whisker from Y−Err to
	// Y+Err (a standard deviation, say).
	Err []float64
}

func (l Line) check() error {
	if len(l.X) != len(l.Y) || (l.Err != nil && len(l.Err) != len(l.Y)) {
		return fmt.Errorf("plot: line %q has %d x, %d y and %d error values; want one of each per point", l.Name, len(l.X), len(l.Y), len(l.Err))
	}
	return nil
}

func (l Line) color(i int) color.RGBA {
	if l.Color == (color.RGBA{}) {
		return Palette[i%len(Palette)]
	}
	return l.Color
}

// DrawLines paints the lines inside Frame (clipped to it). A point that
// the axes cannot show (not finite, or ≤ 0 on a Log axis) breaks its line.
func (a *Axes) DrawLines(c *Canvas, lines []Line) error {
	if err := a.Check(); err != nil {
		return err
	}
	for _, l := range lines {
		if err := l.check(); err != nil {
			return err
		}
	}
	c = c.Sub(a.Frame)
	s := a.scale()
	pen, mark := s+1, 2*s+1
	for i, l := range lines {
		col := l.color(i)
		var prev *image.Point
		for k := range l.X {
			px, py := a.PixelX(l.X[k]), a.PixelY(l.Y[k])
			if !finite(px) || !finite(py) {
				prev = nil
				continue
			}
			p := image.Pt(int(math.Round(px)), int(math.Round(py)))
			if prev != nil {
				c.Line(*prev, p, pen, col, a.Frame)
			}
			prev = &p
			c.Fill(image.Rect(p.X-mark, p.Y-mark, p.X+mark+1, p.Y+mark+1), col)
			if l.Err != nil && l.Err[k] > 0 {
				lo, hi := a.PixelY(l.Y[k]-l.Err[k]), a.PixelY(l.Y[k]+l.Err[k])
				if !finite(lo) { // below a Log axis: to the frame's edge
					lo = float64(a.Frame.Max.Y)
					if a.YDown {
						lo = float64(a.Frame.Min.Y)
					}
				}
				y0, y1 := int(math.Round(lo)), int(math.Round(hi))
				c.Line(image.Pt(p.X, y0), image.Pt(p.X, y1), max(s, 1), col, a.Frame)
				for _, y := range []int{y0, y1} {
					c.Line(image.Pt(p.X-mark, y), image.Pt(p.X+mark, y), max(s, 1), col, a.Frame)
				}
			}
		}
	}
	return nil
}

// LineChart draws a whole chart of lines on a white width × height canvas:
// ax's title and axis labels, a legend of the lines' names, and the lines.
// An axis whose Min and Max are both 0 is fitted to the data (a Linear y
// axis from 0; a Log one out to the nearest 1, 2 or 5 times a power of
// ten).
func LineChart(width, height int, ax Axes, lines []Line) (*Canvas, error) {
	c, err := NewCanvas(width, height, White)
	if err != nil {
		return nil, err
	}
	var xs, ys []float64
	for _, l := range lines {
		if err := l.check(); err != nil {
			return nil, err
		}
		for k := range l.X {
			e := 0.0
			if l.Err != nil && l.Err[k] > 0 {
				e = l.Err[k]
			}
			if finite(l.X[k]) && finite(l.Y[k]) {
				xs = append(xs, l.X[k])
				ys = append(ys, l.Y[k]-e, l.Y[k], l.Y[k]+e)
			}
		}
	}
	if ax.X.Min == 0 && ax.X.Max == 0 {
		if ax.X.Min, ax.X.Max, err = fitRange(xs, ax.X.Scale, false); err != nil {
			return nil, fmt.Errorf("%w (axis %q)", err, ax.X.Label)
		}
	}
	if ax.Y.Min == 0 && ax.Y.Max == 0 {
		if ax.Y.Min, ax.Y.Max, err = fitRange(ys, ax.Y.Scale, true); err != nil {
			return nil, fmt.Errorf("%w (axis %q)", err, ax.Y.Label)
		}
	}
	if ax.Legend == nil {
		for i, l := range lines {
			ax.Legend = append(ax.Legend, LegendEntry{l.Name, l.color(i)})
		}
	}
	if err := ax.Layout(c.Bounds()); err != nil {
		return nil, err
	}
	if err := ax.Draw(c); err != nil {
		return nil, err
	}
	if err := ax.DrawLines(c, lines); err != nil {
		return nil, err
	}
	return c, nil
}

// fitRange is a range that shows every value v: on a Linear axis padded by
// 5% (from 0 when fromZero), on a Log axis (only v > 0 count) widened to
// the nearest 1, 2 or 5 times a power of ten.
func fitRange(vs []float64, scale Scale, fromZero bool) (lo, hi float64, err error) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if scale == Log && v <= 0 {
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("plot: no values to fit the axis to")
	}
	if scale == Log {
		// A 5% margin, so that no point lies on the frame.
		return step125(lo/1.05, false), step125(hi*1.05, true), nil
	}
	if fromZero {
		lo = min(lo, 0)
	}
	if lo == hi {
		lo, hi = lo-1, hi+1
	}
	pad := 0.05 * (hi - lo)
	if !fromZero || lo < 0 {
		lo -= pad
	}
	return lo, hi + pad, nil
}

// step125 is the largest 1, 2 or 5 times a power of ten ≤ v (up: the
// smallest > v).
func step125(v float64, up bool) float64 {
	e := math.Floor(math.Log10(v))
	best := v
	for _, k := range []float64{e + 1, e, e - 1} { // descending
		for _, m := range []float64{5, 2, 1} {
			x := m * math.Pow(10, k)
			switch {
			case up && x > v:
				best = x // the last one > v is the smallest
			case !up && x <= v:
				return x
			}
		}
	}
	return best
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
