// Package plot draws vkrun's pictures (the receptive field of a
// sliding-window model, attention heatmaps, benchmark speeds against
// depth) as PNG images, with Go's image packages and nothing else.
//
// A Canvas is an image with a background colour and drawing primitives;
// text uses the package's own 5×8 bitmap font (font.go). Axes map data
// coordinates into a frame and draw the frame, ticks, labels and title;
// a Heatmap fills a grid of cells inside a frame; Axes.DrawLines draws
// line plots, and LineChart makes a whole chart.
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
)

// MaxSide bounds a canvas's width and height (a 16384² RGBA image is 1 GiB).
const MaxSide = 16384

// Colours used by default.
var (
	White = color.RGBA{255, 255, 255, 255}
	Black = color.RGBA{0, 0, 0, 255}
	Grey  = color.RGBA{128, 128, 128, 255}
)

// Canvas is an RGBA image that starts filled with its background colour.
type Canvas struct {
	img *image.RGBA
	bg  color.RGBA
}

// NewCanvas makes a width × height canvas filled with background.
func NewCanvas(width, height int, background color.RGBA) (*Canvas, error) {
	if width <= 0 || height <= 0 || width > MaxSide || height > MaxSide {
		return nil, fmt.Errorf("plot: canvas %d×%d: each side must be 1…%d pixels", width, height, MaxSide)
	}
	c := &Canvas{img: image.NewRGBA(image.Rect(0, 0, width, height)), bg: background}
	c.Fill(c.img.Rect, background)
	return c, nil
}

// Image is the canvas's pixels (not a copy).
func (c *Canvas) Image() *image.RGBA { return c.img }

// Bounds is the canvas's rectangle, with its origin at (0, 0).
func (c *Canvas) Bounds() image.Rectangle { return c.img.Rect }

// Background is the colour the canvas started with.
func (c *Canvas) Background() color.RGBA { return c.bg }

// Sub is a canvas that paints the same pixels, clipped to r.
func (c *Canvas) Sub(r image.Rectangle) *Canvas {
	return &Canvas{img: c.img.SubImage(r).(*image.RGBA), bg: c.bg}
}

// Fill paints r, clipped to the canvas.
func (c *Canvas) Fill(r image.Rectangle, col color.RGBA) {
	r = r.Intersect(c.img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := c.img.Pix[c.img.PixOffset(r.Min.X, y):c.img.PixOffset(r.Max.X, y)]
		for i := 0; i < len(row); i += 4 {
			row[i], row[i+1], row[i+2], row[i+3] = col.R, col.G, col.B, col.A
		}
	}
}

// Outline paints a one-pixel border just outside r (r itself is left as it is).
func (c *Canvas) Outline(r image.Rectangle, col color.RGBA) {
	o := r.Inset(-1)
	c.Fill(image.Rect(o.Min.X, o.Min.Y, o.Max.X, r.Min.Y), col)
	c.Fill(image.Rect(o.Min.X, r.Max.Y, o.Max.X, o.Max.Y), col)
	c.Fill(image.Rect(o.Min.X, r.Min.Y, r.Min.X, r.Max.Y), col)
	c.Fill(image.Rect(r.Max.X, r.Min.Y, o.Max.X, r.Max.Y), col)
}

// Line paints the segment p–q with a square pen of width pixels, only
// inside clip (and the canvas).
func (c *Canvas) Line(p, q image.Point, width int, col color.RGBA, clip image.Rectangle) {
	width = max(width, 1)
	clip = clip.Intersect(c.img.Rect)
	// Bresenham's line: every step moves one pixel along the longer axis.
	dx, dy := abs(q.X-p.X), -abs(q.Y-p.Y)
	sx, sy := sign(q.X-p.X), sign(q.Y-p.Y)
	err := dx + dy
	x, y := p.X, p.Y
	for {
		pen := image.Rect(x-(width-1)/2, y-(width-1)/2, x+width/2+1, y+width/2+1)
		c.Fill(pen.Intersect(clip), col)
		if x == q.X && y == q.Y {
			return
		}
		if e2 := 2 * err; e2 >= dy {
			err += dy
			x += sx
		} else {
			err += dx
			y += sy
		}
	}
}

// Anchor says which point of a text's box is placed at the point given:
// X 0 is the left edge, 0.5 the middle and 1 the right edge; Y 0 is the
// top, 1 the bottom.
type Anchor struct{ X, Y float64 }

var (
	TopLeft     = Anchor{0, 0}
	Top         = Anchor{0.5, 0}
	TopRight    = Anchor{1, 0}
	Left        = Anchor{0, 0.5}
	Center      = Anchor{0.5, 0.5}
	Right       = Anchor{1, 0.5}
	BottomLeft  = Anchor{0, 1}
	Bottom      = Anchor{0.5, 1}
	BottomRight = Anchor{1, 1}
)

// TextBox is the box that Text(p, s, a, _, scale) paints in.
func TextBox(p image.Point, s string, a Anchor, scale int) image.Rectangle {
	scale = max(scale, 1)
	return anchored(p, TextWidth(s, scale), TextHeight(scale), a)
}

// TextUpBox is the box that TextUp(p, s, a, _, scale) paints in.
func TextUpBox(p image.Point, s string, a Anchor, scale int) image.Rectangle {
	scale = max(scale, 1)
	return anchored(p, TextHeight(scale), TextWidth(s, scale), a)
}

func anchored(p image.Point, w, h int, a Anchor) image.Rectangle {
	x := p.X - int(math.Round(a.X*float64(w)))
	y := p.Y - int(math.Round(a.Y*float64(h)))
	return image.Rect(x, y, x+w, y+h)
}

// Text paints s in the package's font, each font pixel a scale × scale
// square, with the box's anchor point a at p. It returns the box.
func (c *Canvas) Text(p image.Point, s string, a Anchor, col color.RGBA, scale int) image.Rectangle {
	box := TextBox(p, s, a, scale)
	c.drawText(box, s, col, max(scale, 1), false)
	return box
}

// TextUp paints s turned a quarter turn anticlockwise, to be read from
// bottom to top (a y-axis label), with the box's anchor point a at p. It
// returns the box.
func (c *Canvas) TextUp(p image.Point, s string, a Anchor, col color.RGBA, scale int) image.Rectangle {
	box := TextUpBox(p, s, a, scale)
	c.drawText(box, s, col, max(scale, 1), true)
	return box
}

// drawText paints s into box: left to right, or (up) bottom to top.
func (c *Canvas) drawText(box image.Rectangle, s string, col color.RGBA, scale int, up bool) {
	for k, r := range []rune(s) {
		g, _ := Glyph(r)
		for gy, bits := range g {
			for gx := range GlyphWidth {
				if bits&(1<<(GlyphWidth-1-gx)) == 0 {
					continue
				}
				// (u, v) is the font pixel in the unturned line of text.
				u, v := k*Advance+gx, gy
				x, y := box.Min.X+u*scale, box.Min.Y+v*scale
				if up { // (u, v) → (v, width−1−u)
					x, y = box.Min.X+v*scale, box.Max.Y-(u+1)*scale
				}
				c.Fill(image.Rect(x, y, x+scale, y+scale), col)
			}
		}
	}
}

// LegendEntry is one swatch and its label.
type LegendEntry struct {
	Label string
	Color color.RGBA
}

// Legend paints entries as swatches with labels, left to right from the
// top-left corner p, starting a new row where the next entry would pass
// maxWidth pixels. It returns the box it painted in.
func (c *Canvas) Legend(p image.Point, entries []LegendEntry, ink color.RGBA, scale int, maxWidth int) image.Rectangle {
	scale = max(scale, 1)
	boxes, all := legendLayout(p, entries, scale, maxWidth)
	th := TextHeight(scale)
	for i, e := range entries {
		b := boxes[i]
		c.Fill(image.Rect(b.Min.X, b.Min.Y, b.Min.X+th-scale, b.Min.Y+th-scale), e.Color)
		c.Text(image.Pt(b.Min.X+th+2*scale, b.Min.Y), e.Label, TopLeft, ink, scale)
	}
	return all
}

// LegendBox is the box that Legend(p, entries, _, scale, maxWidth) paints in.
func LegendBox(p image.Point, entries []LegendEntry, scale int, maxWidth int) image.Rectangle {
	_, all := legendLayout(p, entries, max(scale, 1), maxWidth)
	return all
}

// legendLayout places each entry (a swatch the height of a line, then its
// label) and returns their boxes and the box around them all.
func legendLayout(p image.Point, entries []LegendEntry, scale, maxWidth int) ([]image.Rectangle, image.Rectangle) {
	th := TextHeight(scale)
	gap := 2 * Advance * scale
	boxes := make([]image.Rectangle, len(entries))
	all := image.Rectangle{Min: p, Max: p}
	x, y := p.X, p.Y
	for i, e := range entries {
		w := th + 2*scale + TextWidth(e.Label, scale)
		if i > 0 && x+w > p.X+maxWidth {
			x, y = p.X, y+th+2*scale
		}
		boxes[i] = image.Rect(x, y, x+w, y+th)
		all = all.Union(boxes[i])
		x += w + gap
	}
	return boxes, all
}

// EncodePNG writes the canvas as a PNG.
func (c *Canvas) EncodePNG(w io.Writer) error {
	if err := png.Encode(w, c.img); err != nil {
		return fmt.Errorf("plot: encoding PNG: %w", err)
	}
	return nil
}

// WritePNG writes the canvas as a PNG file at path.
func (c *Canvas) WritePNG(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := c.EncodePNG(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}
