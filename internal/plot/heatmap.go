package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Ramp is a colour map: evenly spaced colour stops, At(0) the first and
// At(1) the last, blended linearly in between.
type Ramp []color.RGBA

// Blues runs from a pale blue (not the white background) to a dark blue.
var Blues = Ramp{{198, 219, 239, 255}, {107, 174, 214, 255}, {33, 113, 181, 255}, {8, 48, 107, 255}}

// At is the colour at t in 0…1 (t is clamped; NaN gives the first stop).
func (r Ramp) At(t float64) color.RGBA {
	switch {
	case len(r) == 0:
		return color.RGBA{}
	case len(r) == 1 || !(t > 0):
		return r[0]
	case t >= 1:
		return r[len(r)-1]
	}
	x := t * float64(len(r)-1)
	i := int(x)
	f := x - float64(i)
	a, b := r[i], r[i+1]
	mix := func(p, q uint8) uint8 { return uint8(math.Round(float64(p) + f*(float64(q)-float64(p)))) }
	return color.RGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), mix(a.A, b.A)}
}

// Reversed is the ramp from its last stop to its first.
func (r Ramp) Reversed() Ramp {
	out := make(Ramp, len(r))
	for i, c := range r {
		out[len(r)-1-i] = c
	}
	return out
}

// Heatmap is a grid of values drawn as coloured cells: row 0 at the top,
// column 0 at the left.
type Heatmap struct {
	Rows, Cols int
	// Values is (Rows, Cols), row-major. A NaN cell is not painted: it
	// keeps what was there (the background).
	Values []float64
	// Min and Max map to the ends of Ramp; values outside are clamped.
	// Both 0 means 0 and 1.
	Min, Max float64
	Ramp     Ramp
}

// Check reports what is wrong with the heatmap's shape, range or ramp.
func (h Heatmap) Check() error {
	switch {
	case h.Rows <= 0 || h.Cols <= 0:
		return fmt.Errorf("plot: heatmap of %d×%d cells: want at least one row and column", h.Rows, h.Cols)
	case len(h.Values) != h.Rows*h.Cols:
		return fmt.Errorf("plot: heatmap of %d×%d cells has %d values", h.Rows, h.Cols, len(h.Values))
	case len(h.Ramp) == 0:
		return fmt.Errorf("plot: heatmap has no colour ramp")
	case h.Min > h.Max || (h.Min == h.Max && h.Min != 0) || math.IsNaN(h.Min) || math.IsNaN(h.Max):
		return fmt.Errorf("plot: heatmap range %g…%g is empty", h.Min, h.Max)
	}
	return nil
}

// Cell is the pixels of cell (row, col) when the map fills frame: the
// frame split into Cols columns and Rows rows as evenly as whole pixels
// allow.
func (h Heatmap) Cell(frame image.Rectangle, row, col int) image.Rectangle {
	x0 := frame.Min.X + col*frame.Dx()/h.Cols
	x1 := frame.Min.X + (col+1)*frame.Dx()/h.Cols
	y0 := frame.Min.Y + row*frame.Dy()/h.Rows
	y1 := frame.Min.Y + (row+1)*frame.Dy()/h.Rows
	return image.Rect(x0, y0, x1, y1)
}

// Color is the colour of value v.
func (h Heatmap) Color(v float64) color.RGBA {
	lo, hi := h.Min, h.Max
	if lo == 0 && hi == 0 {
		hi = 1
	}
	return h.Ramp.At((v - lo) / (hi - lo))
}

// Draw fills frame with the cells. Every cell must get at least one pixel.
func (h Heatmap) Draw(c *Canvas, frame image.Rectangle) error {
	if err := h.Check(); err != nil {
		return err
	}
	if frame.Dx() < h.Cols || frame.Dy() < h.Rows {
		return fmt.Errorf("plot: heatmap of %d×%d cells does not fit a %d×%d frame", h.Rows, h.Cols, frame.Dy(), frame.Dx())
	}
	for r := range h.Rows {
		for col := range h.Cols {
			if v := h.Values[r*h.Cols+col]; !math.IsNaN(v) {
				c.Fill(h.Cell(frame, r, col), h.Color(v))
			}
		}
	}
	return nil
}
