package plot

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"
)

// Scale is how an axis maps values to distance.
type Scale int

const (
	// Linear: equal differences are equal distances.
	Linear Scale = iota
	// Log: equal ratios are equal distances (Min must be > 0).
	Log
)

// Tick is a marked value on an axis and its label.
type Tick struct {
	Value float64
	Label string
}

// Axis is one axis of an Axes: the range of values it shows, its label and
// its ticks.
type Axis struct {
	Label    string
	Min, Max float64
	Scale    Scale
	// Ticks are the marks to draw; nil chooses about five between Min and
	// Max (1, 2 or 5 times a power of ten apart; on a Log axis, the values
	// 1, 2 and 5 times a power of ten).
	Ticks []Tick
}

// Check reports what is wrong with the axis's range.
func (a Axis) Check() error {
	switch {
	case math.IsNaN(a.Min) || math.IsNaN(a.Max) || math.IsInf(a.Min, 0) || math.IsInf(a.Max, 0):
		return fmt.Errorf("plot: axis %q: range %g…%g is not finite", a.Label, a.Min, a.Max)
	case a.Min >= a.Max:
		return fmt.Errorf("plot: axis %q: range %g…%g is empty (want Min < Max)", a.Label, a.Min, a.Max)
	case a.Scale == Log && a.Min <= 0:
		return fmt.Errorf("plot: axis %q: a log scale needs Min > 0, not %g", a.Label, a.Min)
	case a.Scale != Linear && a.Scale != Log:
		return fmt.Errorf("plot: axis %q: unknown scale %d", a.Label, a.Scale)
	}
	return nil
}

// Frac is where v falls between Min (0) and Max (1); NaN for a value a
// Log axis cannot show (≤ 0).
func (a Axis) Frac(v float64) float64 {
	if a.Scale == Log {
		if v <= 0 {
			return math.NaN()
		}
		return (math.Log10(v) - math.Log10(a.Min)) / (math.Log10(a.Max) - math.Log10(a.Min))
	}
	return (v - a.Min) / (a.Max - a.Min)
}

// AutoTicks are the ticks drawn when Ticks is nil.
func (a Axis) AutoTicks() []Tick {
	if a.Check() != nil {
		return nil
	}
	if a.Scale == Log {
		return logTicks(a.Min, a.Max)
	}
	return linearTicks(a.Min, a.Max, 5)
}

func (a Axis) ticks() []Tick {
	if a.Ticks != nil {
		return a.Ticks
	}
	return a.AutoTicks()
}

// linearTicks are the multiples of a step (1, 2 or 5 times a power of ten)
// between lo and hi, the step the smallest that gives at most about n.
func linearTicks(lo, hi float64, n int) []Tick {
	raw := (hi - lo) / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * p
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	decimals := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var ts []Tick
	for k := math.Ceil(lo/step - 1e-9); k*step <= hi+step*1e-9; k++ {
		v := k * step
		if v == 0 {
			v = 0 // not −0
		}
		ts = append(ts, Tick{v, strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return ts
}

// logTicks are the values 1, 2 and 5 times a power of ten within lo…hi,
// or only the powers of ten where that would be more than eight.
func logTicks(lo, hi float64) []Tick {
	var ts []Tick
	for _, mults := range [][]float64{{1, 2, 5}, {1}} {
		ts = ts[:0]
		for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
			for _, m := range mults {
				v := m * math.Pow(10, e)
				if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
					ts = append(ts, Tick{v, strconv.FormatFloat(v, 'f', max(0, -int(e)), 64)})
				}
			}
		}
		if len(ts) <= 8 {
			break
		}
	}
	return ts
}

// Axes is a frame with an x and a y axis: the data area (Frame), and around
// it the ticks, their labels, the axis labels, an optional legend row and
// a title, all inside Area. Set Area and Frame with Layout or Fit.
type Axes struct {
	Title  string
	X, Y   Axis
	Legend []LegendEntry // drawn in a row above the frame; nil: none
	// YDown puts the y axis's Min at the top, as a matrix's first row is.
	YDown bool
	// XTicksUp turns the x tick labels to read upwards, for long labels
	// such as token pieces.
	XTicksUp bool
	// TextScale is the size of every text: each font pixel becomes
	// TextScale × TextScale pixels (0 is 1).
	TextScale int
	// Ink is the colour of the frame, ticks and text (zero: black).
	Ink color.RGBA

	Area  image.Rectangle // everything the axes draw lies inside it
	Frame image.Rectangle // the data area, inside Area
}

func (a *Axes) scale() int { return max(a.TextScale, 1) }

func (a *Axes) ink() color.RGBA {
	if a.Ink == (color.RGBA{}) {
		return Black
	}
	return a.Ink
}

// widest is the width of the widest tick label of ax.
func widest(ax Axis, s int) int {
	w := 0
	for _, t := range ax.ticks() {
		w = max(w, TextWidth(t.Label, s))
	}
	return w
}

// insets are the room between Area and Frame on each side. The legend's
// height depends on the width it wraps in: frameWidth.
func (a *Axes) insets(frameWidth int) (left, top, right, bottom int) {
	s := a.scale()
	th, pad, tick := TextHeight(s), 2*s, 3*s
	left = pad + widest(a.Y, s) + s + tick + 1
	if a.Y.Label != "" {
		left += th + pad
	}
	top = pad + th/2 + 1
	if a.Title != "" {
		top += th + pad
	}
	if len(a.Legend) > 0 {
		top += LegendBox(image.Point{}, a.Legend, s, frameWidth).Dy() + pad
	}
	bottom = 1 + tick + s + th + pad
	right = pad + 1
	if a.XTicksUp {
		bottom += widest(a.X, s) - th
		right += th / 2
	} else {
		right += widest(a.X, s) / 2
	}
	if a.X.Label != "" {
		bottom += th + pad
	}
	return left, top, right, bottom
}

// Layout sets Area to area and Frame to what is left inside it for the
// data once the labels have room.
func (a *Axes) Layout(area image.Rectangle) error {
	l, _, r, _ := a.insets(0)
	_, t, _, b := a.insets(area.Dx() - l - r)
	if area.Dx()-l-r < 1 || area.Dy()-t-b < 1 {
		return fmt.Errorf("plot: axes %q: area %v leaves no room for data (the labels need %d×%d pixels)", a.Title, area.Size(), l+r, t+b)
	}
	a.Area = area
	a.Frame = image.Rect(area.Min.X+l, area.Min.Y+t, area.Max.X-r, area.Max.Y-b)
	return nil
}

// Fit sets Frame to frame and Area to frame grown by the room the labels
// need, for a frame of an exact size (a heatmap of whole cells).
func (a *Axes) Fit(frame image.Rectangle) {
	l, t, r, b := a.insets(frame.Dx())
	a.Frame = frame
	a.Area = image.Rect(frame.Min.X-l, frame.Min.Y-t, frame.Max.X+r, frame.Max.Y+b)
}

// X and Y pixels of data values (fractional; NaN where a Log axis cannot
// show the value).
func (a *Axes) PixelX(v float64) float64 {
	return float64(a.Frame.Min.X) + a.X.Frac(v)*float64(a.Frame.Dx())
}

func (a *Axes) PixelY(v float64) float64 {
	f := a.Y.Frac(v)
	if a.YDown {
		return float64(a.Frame.Min.Y) + f*float64(a.Frame.Dy())
	}
	return float64(a.Frame.Max.Y) - f*float64(a.Frame.Dy())
}

// pixel rounds a pixel coordinate down into lo…hi−1 (a value at Max lies
// on the frame's far edge, which is outside it).
func pixel(v float64, lo, hi int) int {
	return min(max(int(math.Floor(v)), lo), hi-1)
}

// Check reports what is wrong with the axes: their ranges, or a Frame
// that is empty or not inside Area.
func (a *Axes) Check() error {
	if err := errors.Join(a.X.Check(), a.Y.Check()); err != nil {
		return err
	}
	if a.Frame.Empty() || !a.Frame.In(a.Area) {
		return fmt.Errorf("plot: axes %q: frame %v is empty or not inside area %v (call Layout or Fit)", a.Title, a.Frame, a.Area)
	}
	return nil
}

// Draw paints the frame's outline, the ticks and their labels, the axis
// labels, the legend and the title, clipped to Area. It leaves the inside
// of Frame as it is.
func (a *Axes) Draw(c *Canvas) error {
	if err := a.Check(); err != nil {
		return err
	}
	c = c.Sub(a.Area)
	s, ink, f := a.scale(), a.ink(), a.Frame
	th, pad, tick := TextHeight(s), 2*s, 3*s
	c.Outline(f, ink)
	for _, t := range a.X.ticks() {
		fx := a.X.Frac(t.Value)
		if !(fx >= 0 && fx <= 1) {
			continue
		}
		x := pixel(a.PixelX(t.Value), f.Min.X, f.Max.X)
		y := f.Max.Y + 1
		c.Fill(image.Rect(x, y, x+max(s/2, 1), y+tick), ink)
		at := image.Pt(x, y+tick+s)
		if a.XTicksUp {
			c.TextUp(at, t.Label, Top, ink, s)
		} else {
			c.text(a.Area, at, t.Label, Top, ink, s)
		}
	}
	for _, t := range a.Y.ticks() {
		fy := a.Y.Frac(t.Value)
		if !(fy >= 0 && fy <= 1) {
			continue
		}
		y := pixel(a.PixelY(t.Value), f.Min.Y, f.Max.Y)
		x := f.Min.X - 1
		c.Fill(image.Rect(x-tick, y, x, y+max(s/2, 1)), ink)
		c.Text(image.Pt(x-tick-s, y), t.Label, Right, ink, s)
	}
	mid := (f.Min.X + f.Max.X) / 2
	if a.X.Label != "" {
		c.text(a.Area, image.Pt(mid, a.Area.Max.Y-pad), a.X.Label, Bottom, ink, s)
	}
	if a.Y.Label != "" {
		box := TextUpBox(image.Pt(a.Area.Min.X+pad, (f.Min.Y+f.Max.Y)/2), a.Y.Label, Left, s)
		c.TextUp(shiftInto(box, a.Area).Min, a.Y.Label, TopLeft, ink, s)
	}
	y := a.Area.Min.Y + pad
	if a.Title != "" {
		c.text(a.Area, image.Pt(mid, y), a.Title, Top, ink, s)
		y += th + pad
	}
	if len(a.Legend) > 0 {
		c.Legend(image.Pt(f.Min.X, y), a.Legend, ink, s, f.Dx())
	}
	return nil
}

// text paints s anchored at p, moved as little as needed to lie inside
// area (when it fits at all).
func (c *Canvas) text(area image.Rectangle, p image.Point, s string, a Anchor, col color.RGBA, scale int) {
	box := shiftInto(TextBox(p, s, a, scale), area)
	c.Text(box.Min, s, TopLeft, col, scale)
}

// shiftInto moves r the least distance that puts it inside area, or to
// area's top-left corner where r is the larger.
func shiftInto(r, area image.Rectangle) image.Rectangle {
	d := image.Point{}
	if r.Max.X > area.Max.X {
		d.X = area.Max.X - r.Max.X
	}
	if r.Min.X+d.X < area.Min.X {
		d.X = area.Min.X - r.Min.X
	}
	if r.Max.Y > area.Max.Y {
		d.Y = area.Max.Y - r.Max.Y
	}
	if r.Min.Y+d.Y < area.Min.Y {
		d.Y = area.Min.Y - r.Min.Y
	}
	return r.Add(d)
}
