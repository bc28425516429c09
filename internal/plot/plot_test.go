package plot

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every printable ASCII character has its own glyph, inside 5 columns,
// and only the characters with descenders use the 8th row.
func TestPlotGlyphCoverage(t *testing.T) {
	seen := map[[GlyphHeight]uint8]rune{}
	var descenders []rune
	for r := rune(32); r <= 126; r++ {
		g, ok := Glyph(r)
		require.True(t, ok, "%q has no glyph", r)
		lit := 0
		for _, row := range g {
			require.Zero(t, row>>GlyphWidth, "%q has pixels beyond column %d", r, GlyphWidth)
			for x := range GlyphWidth {
				lit += int(row>>x) & 1
			}
		}
		if r == ' ' {
			assert.Zero(t, lit, "the space is blank")
		} else {
			assert.NotZero(t, lit, "%q is blank", r)
		}
		if prev, dup := seen[g]; dup {
			t.Errorf("%q and %q have the same glyph", prev, r)
		}
		seen[g] = r
		if g[GlyphHeight-1] != 0 {
			descenders = append(descenders, r)
		}
	}
	assert.Equal(t, ",gjpqy", string(descenders), "the characters that use the descender row")
	for _, r := range []rune{0, '\n', 0x1f, 0x7f, 'é', 'µ', '🦙'} {
		g, ok := Glyph(r)
		assert.False(t, ok, "%q is outside the font", r)
		assert.Equal(t, missing, glyph(g), "%q is drawn as the box", r)
	}
	assert.Equal(t, 0, TextWidth("", 2))
	assert.Equal(t, 5*3, TextWidth("é", 3), "a rune is one glyph, not its bytes")
	assert.Equal(t, (3*Advance-1)*2, TextWidth("abc", 2))
}

// A malformed font table is an error that says where.
func TestPlotParseFontErrors(t *testing.T) {
	good := strings.Repeat("..... .....\n", GlyphHeight)
	ragged := strings.Repeat("..... .....\n", 3) + "..... ....\n" + strings.Repeat("..... .....\n", GlyphHeight-4)
	for _, c := range []struct {
		name  string
		bands []string
		want  string
	}{
		{"short band", []string{strings.Repeat("..... .....\n", GlyphHeight-1)}, "band 0 has 7 rows, want 8"},
		{"ragged row", []string{good, ragged}, "band 1 row 3 is 10 characters, want 11"},
		{"bad pixel", []string{strings.Replace(good, "..... .....", "..x.. .....", 1)}, `band 0 row 0 column 2: unexpected 'x'`},
		{"no gap", []string{strings.Replace(good, "..... .....", "...........", 1)}, `band 0 row 0 column 5: unexpected '.'`},
		{"too few glyphs", []string{good}, "2 glyphs, want 95"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFont(c.bands)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	f, err := parseFont(glyphBands[:])
	require.NoError(t, err)
	assert.Len(t, f, 95)
}

// Text paints exactly its glyphs' pixels, scaled, inside its box; TextUp
// paints the same pixels turned a quarter turn anticlockwise.
func TestPlotTextPixels(t *testing.T) {
	const s = "Ag|,"
	ink := color.RGBA{10, 20, 30, 255}
	for _, scale := range []int{1, 3} {
		t.Run(fmt.Sprintf("scale=%d", scale), func(t *testing.T) {
			flat, err := NewCanvas(100, 60, White)
			require.NoError(t, err)
			box := flat.Text(image.Pt(50, 30), s, Center, ink, scale)
			assert.Equal(t, image.Pt(TextWidth(s, scale), TextHeight(scale)), box.Size())
			assert.InDelta(t, 50, float64(box.Min.X+box.Max.X)/2, 0.5, "centred across")
			assert.InDelta(t, 30, float64(box.Min.Y+box.Max.Y)/2, 0.5, "centred down")
			for y := range 60 {
				for x := range 100 {
					want := White
					if p := image.Pt(x, y); p.In(box) {
						u, v := (x-box.Min.X)/scale, (y-box.Min.Y)/scale
						g, _ := Glyph(rune(s[u/Advance]))
						if u%Advance < GlyphWidth && g[v]>>(GlyphWidth-1-u%Advance)&1 == 1 {
							want = ink
						}
					}
					require.Equal(t, want, flat.Image().RGBAAt(x, y), "pixel (%d, %d)", x, y)
				}
			}
			up, err := NewCanvas(60, 100, White)
			require.NoError(t, err)
			ubox := up.TextUp(image.Pt(5, 95), s, BottomLeft, ink, scale)
			assert.Equal(t, image.Pt(TextHeight(scale), TextWidth(s, scale)), ubox.Size())
			assert.Equal(t, image.Pt(5, 95), image.Pt(ubox.Min.X, ubox.Max.Y))
			for y := range 100 {
				for x := range 60 {
					want := White
					if p := image.Pt(x, y); p.In(ubox) {
						// (x, y) shows the flat text's pixel (U, V).
						u, v := ubox.Max.Y-1-y, x-ubox.Min.X
						want = flat.Image().RGBAAt(box.Min.X+u, box.Min.Y+v)
					}
					require.Equal(t, want, up.Image().RGBAAt(x, y), "pixel (%d, %d)", x, y)
				}
			}
		})
	}
}

// A heatmap of known values gives each cell, every pixel of it, the ramp's
// colour for its value; NaN cells and everything outside the frame keep
// the background.
func TestPlotHeatmapColours(t *testing.T) {
	ramp := Ramp{{0, 0, 0, 255}, {200, 100, 50, 255}}
	nan := math.NaN()
	for _, c := range []struct {
		name     string
		min, max float64
		values   []float64
		want     []color.RGBA // nil: the background
	}{
		{"0…1", 0, 0, []float64{0, 0.5, 1, nan, 0.25, 7},
			[]color.RGBA{{0, 0, 0, 255}, {100, 50, 25, 255}, {200, 100, 50, 255}, {}, {50, 25, 13, 255}, {200, 100, 50, 255}}},
		{"10…20", 10, 20, []float64{10, 15, 20, -3, nan, 17.5},
			[]color.RGBA{{0, 0, 0, 255}, {100, 50, 25, 255}, {200, 100, 50, 255}, {0, 0, 0, 255}, {}, {150, 75, 38, 255}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bg := color.RGBA{128, 128, 128, 255}
			cv, err := NewCanvas(20, 20, bg)
			require.NoError(t, err)
			h := Heatmap{Rows: 2, Cols: 3, Values: c.values, Min: c.min, Max: c.max, Ramp: ramp}
			frame := image.Rect(5, 5, 14, 9) // cells of 3×2 pixels
			require.NoError(t, h.Draw(cv, frame))
			for y := range 20 {
				for x := range 20 {
					want := bg
					if p := image.Pt(x, y); p.In(frame) {
						r, col := (y-5)/2, (x-5)/3
						require.Equal(t, image.Rect(5+3*col, 5+2*r, 8+3*col, 7+2*r), h.Cell(frame, r, col))
						if w := c.want[r*3+col]; w != (color.RGBA{}) {
							want = w
						}
					}
					require.Equal(t, want, cv.Image().RGBAAt(x, y), "pixel (%d, %d)", x, y)
				}
			}
		})
	}
}

// Cells tile an uneven frame: every pixel in exactly one cell.
func TestPlotHeatmapCellsTile(t *testing.T) {
	h := Heatmap{Rows: 3, Cols: 7}
	frame := image.Rect(2, 3, 2+17, 3+10)
	count := map[image.Point]int{}
	for r := range h.Rows {
		for c := range h.Cols {
			cell := h.Cell(frame, r, c)
			require.False(t, cell.Empty(), "cell (%d, %d)", r, c)
			for y := cell.Min.Y; y < cell.Max.Y; y++ {
				for x := cell.Min.X; x < cell.Max.X; x++ {
					count[image.Pt(x, y)]++
				}
			}
		}
	}
	assert.Len(t, count, frame.Dx()*frame.Dy())
	for p, n := range count {
		require.True(t, p.In(frame), "%v outside the frame", p)
		require.Equal(t, 1, n, "pixel %v is in %d cells", p, n)
	}
}

func TestPlotHeatmapErrors(t *testing.T) {
	cv, err := NewCanvas(10, 10, White)
	require.NoError(t, err)
	frame := image.Rect(0, 0, 10, 10)
	for _, c := range []struct {
		h    Heatmap
		want string
	}{
		{Heatmap{Rows: 0, Cols: 2, Ramp: Blues}, "0×2 cells"},
		{Heatmap{Rows: 2, Cols: 2, Values: make([]float64, 3), Ramp: Blues}, "has 3 values"},
		{Heatmap{Rows: 1, Cols: 1, Values: []float64{0}}, "no colour ramp"},
		{Heatmap{Rows: 1, Cols: 1, Values: []float64{0}, Ramp: Blues, Min: 2, Max: 1}, "range 2…1 is empty"},
		{Heatmap{Rows: 1, Cols: 11, Values: make([]float64, 11), Ramp: Blues}, "does not fit a 10×10 frame"},
	} {
		t.Run(c.want, func(t *testing.T) {
			err := c.h.Draw(cv, frame)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestPlotRampAt(t *testing.T) {
	r := Ramp{{0, 0, 0, 255}, {100, 200, 0, 255}, {100, 0, 250, 255}}
	for _, c := range []struct {
		t    float64
		want color.RGBA
	}{
		{-1, r[0]}, {0, r[0]}, {math.NaN(), r[0]}, {0.25, color.RGBA{50, 100, 0, 255}}, {0.5, r[1]},
		{0.75, color.RGBA{100, 100, 125, 255}}, {1, r[2]}, {3, r[2]},
	} {
		assert.Equal(t, c.want, r.At(c.t), "At(%v)", c.t)
	}
	assert.Equal(t, Ramp{r[2], r[1], r[0]}, r.Reversed())
	assert.NotEqual(t, White, Blues.At(0), "the palest blue must differ from the background")
}

// Axes draw only inside Area, leave the inside of Frame alone, and do
// draw something; with Layout and with Fit.
func TestPlotAxesStayInside(t *testing.T) {
	many := make([]LegendEntry, 12)
	for i := range many {
		many[i] = LegendEntry{fmt.Sprintf("entry %d", i), Palette[i%len(Palette)]}
	}
	for _, c := range []struct {
		name string
		ax   Axes
	}{
		{"bare", Axes{X: Axis{Min: 0, Max: 1}, Y: Axis{Min: 0, Max: 1}}},
		{"labelled", Axes{Title: "a title", X: Axis{Label: "input position", Min: -0.5, Max: 63.5},
			Y: Axis{Label: "query position", Min: -0.5, Max: 63.5}, YDown: true}},
		{"scale 3", Axes{Title: "big", X: Axis{Label: "x", Min: 0, Max: 5}, Y: Axis{Label: "y", Min: -100000, Max: 100000}, TextScale: 3}},
		{"log and legend", Axes{Title: "tok/s", X: Axis{Label: "depth", Min: -100, Max: 4200},
			Y: Axis{Label: "tok/s", Min: 10, Max: 2000, Scale: Log}, Legend: many, TextScale: 2}},
		{"a title wider than the area", Axes{Title: strings.Repeat("wide ", 40), X: Axis{Min: 0, Max: 1}, Y: Axis{Min: 0, Max: 1}, TextScale: 2}},
		{"token pieces up", Axes{X: Axis{Label: "key", Min: -0.5, Max: 3.5, Ticks: []Tick{{0, "<s>"}, {1, "Once"}, {2, " upon"}, {3, " a time"}}},
			Y: Axis{Label: "query", Min: -0.5, Max: 3.5, Ticks: []Tick{{0, "<s>"}, {3, " a time"}}}, XTicksUp: true, YDown: true, TextScale: 2}},
	} {
		for _, fit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fit=%v", c.name, fit), func(t *testing.T) {
				cv, err := NewCanvas(700, 600, White)
				require.NoError(t, err)
				ax := c.ax
				if fit {
					ax.Fit(image.Rect(250, 300, 450, 400))
				} else {
					require.NoError(t, ax.Layout(image.Rect(40, 30, 660, 570)))
				}
				require.True(t, ax.Frame.In(ax.Area), "frame %v in area %v", ax.Frame, ax.Area)
				require.True(t, ax.Area.In(cv.Bounds()), "area %v in the canvas", ax.Area)
				require.NoError(t, ax.Draw(cv))
				inked := 0
				for y := range 600 {
					for x := range 700 {
						p, px := image.Pt(x, y), cv.Image().RGBAAt(x, y)
						switch {
						case !p.In(ax.Area) || p.In(ax.Frame):
							if px != White {
								require.Failf(t, "painted outside the area or inside the frame", "pixel %v is %v (area %v, frame %v)", p, px, ax.Area, ax.Frame)
							}
						case px != White:
							inked++
						}
					}
				}
				outline := 2*(ax.Frame.Dx()+ax.Frame.Dy()) + 4
				assert.Greater(t, inked, outline+20, "the outline, ticks and labels")
			})
		}
	}
}

func TestPlotAxesErrors(t *testing.T) {
	for _, c := range []struct {
		ax   Axes
		area image.Rectangle
		want string
	}{
		{Axes{X: Axis{Label: "x", Min: 1, Max: 1}, Y: Axis{Min: 0, Max: 1}}, image.Rect(0, 0, 100, 100), `axis "x": range 1…1 is empty`},
		{Axes{X: Axis{Min: 0, Max: 1}, Y: Axis{Label: "y", Min: 0, Max: 10, Scale: Log}}, image.Rect(0, 0, 100, 100), `axis "y": a log scale needs Min > 0`},
		{Axes{X: Axis{Min: 0, Max: math.Inf(1)}, Y: Axis{Min: 0, Max: 1}}, image.Rect(0, 0, 100, 100), "not finite"},
		{Axes{Title: "t", X: Axis{Min: 0, Max: 1}, Y: Axis{Min: 0, Max: 1}}, image.Rect(0, 0, 20, 20), `axes "t": area (20,20) leaves no room`},
	} {
		t.Run(c.want, func(t *testing.T) {
			cv, err := NewCanvas(100, 100, White)
			require.NoError(t, err)
			err = c.ax.Layout(c.area)
			if err == nil {
				err = c.ax.Draw(cv)
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	var ax Axes
	assert.ErrorContains(t, ax.Draw(nil), "empty", "axes never laid out")
}

func TestPlotTicks(t *testing.T) {
	labels := func(ts []Tick) string {
		var s []string
		for _, t := range ts {
			s = append(s, t.Label)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		axis Axis
		want string
	}{
		{Axis{Min: -0.5, Max: 63.5}, "0 20 40 60"},
		{Axis{Min: -0.5, Max: 31.5}, "0 10 20 30"},
		{Axis{Min: -0.5, Max: 15.5}, "0 5 10 15"},
		{Axis{Min: 0, Max: 1}, "0.0 0.2 0.4 0.6 0.8 1.0"},
		{Axis{Min: -3, Max: 3}, "-2 0 2"},
		{Axis{Min: 0, Max: 4200}, "0 1000 2000 3000 4000"},
		{Axis{Min: 3, Max: 900, Scale: Log}, "5 10 20 50 100 200 500"},
		{Axis{Min: 0.01, Max: 0.1, Scale: Log}, "0.01 0.02 0.05 0.1"},
		{Axis{Min: 1, Max: 1e6, Scale: Log}, "1 10 100 1000 10000 100000 1000000"},
		{Axis{Min: 1, Max: 0}, ""},
	} {
		t.Run(fmt.Sprintf("%g…%g/%d", c.axis.Min, c.axis.Max, c.axis.Scale), func(t *testing.T) {
			ts := c.axis.AutoTicks()
			assert.Equal(t, c.want, labels(ts))
			for _, tk := range ts {
				assert.True(t, tk.Value >= c.axis.Min && tk.Value <= c.axis.Max, "tick %v in range", tk.Value)
			}
		})
	}
}

// DrawLines joins the points in the line's colour, inside the frame only;
// each point's pixel is the line's colour.
func TestPlotDrawLines(t *testing.T) {
	cv, err := NewCanvas(300, 200, White)
	require.NoError(t, err)
	ax := Axes{X: Axis{Min: 0, Max: 10}, Y: Axis{Min: 1, Max: 1000, Scale: Log}}
	// Points on the far edges (x = 10, y = 1000) would lie just outside
	// the frame, so these stay inside it.
	require.NoError(t, ax.Layout(cv.Bounds()))
	lines := []Line{
		{Name: "a", X: []float64{0, 5, 9}, Y: []float64{2, 20, 200}, Err: []float64{1, 0, 50}},
		{Name: "b", Color: color.RGBA{1, 2, 3, 255}, X: []float64{1, 4, 12}, Y: []float64{900, -1, 5000}}, // −1: a gap; x 12 and y 5000: off the frame
	}
	require.NoError(t, ax.DrawLines(cv, lines))
	at := func(x, y float64) color.RGBA {
		return cv.Image().RGBAAt(int(math.Round(ax.PixelX(x))), int(math.Round(ax.PixelY(y))))
	}
	near := func(x, y float64, c color.RGBA) bool { // within a pixel of (x, y)
		px, py := int(math.Round(ax.PixelX(x))), int(math.Round(ax.PixelY(y)))
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				if cv.Image().RGBAAt(px+dx, py+dy) == c {
					return true
				}
			}
		}
		return false
	}
	for k := range lines[0].X {
		assert.Equal(t, Palette[0], at(lines[0].X[k], lines[0].Y[k]), "point %d of a", k)
	}
	assert.True(t, near(2.5, math.Sqrt(2*20), Palette[0]), "the segment between a's first points (the log midpoint)")
	assert.False(t, near(4, 900, lines[1].Color), "b has a gap where y is −1")
	assert.Equal(t, lines[1].Color, at(1, 900))
	for y := range 200 {
		for x := range 300 {
			if !image.Pt(x, y).In(ax.Frame) {
				require.Equal(t, White, cv.Image().RGBAAt(x, y), "pixel (%d, %d) outside the frame", x, y)
			}
		}
	}
	bad := []Line{{Name: "short", X: []float64{1, 2}, Y: []float64{1}}}
	assert.ErrorContains(t, ax.DrawLines(cv, bad), `line "short" has 2 x, 1 y`)
}

// LineChart fits its axes to the data and writes a PNG that decodes to the
// same pixels.
func TestPlotLineChart(t *testing.T) {
	c, err := LineChart(320, 240, Axes{Title: "speed", X: Axis{Label: "depth"}, Y: Axis{Label: "tok/s", Scale: Log}},
		[]Line{{Name: "pp", X: []float64{0, 64}, Y: []float64{500, 450}}, {Name: "tg", X: []float64{0, 64}, Y: []float64{30, 20}, Err: []float64{2, 1}}})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, c.EncodePNG(&buf))
	img, err := png.Decode(&buf)
	require.NoError(t, err)
	got := image.NewRGBA(img.Bounds())
	draw.Draw(got, got.Rect, img, image.Point{}, draw.Src)
	assert.Equal(t, c.Image().Rect, got.Rect)
	assert.Equal(t, c.Image().Pix, got.Pix)

	_, err = LineChart(320, 240, Axes{Y: Axis{Scale: Log}}, []Line{{X: []float64{1}, Y: []float64{0}}})
	assert.ErrorContains(t, err, "no values to fit")
	_, err = LineChart(0, 240, Axes{}, nil)
	assert.ErrorContains(t, err, "canvas 0×240")
}

func TestPlotFitRange(t *testing.T) {
	for _, c := range []struct {
		vs       []float64
		scale    Scale
		fromZero bool
		lo, hi   float64
	}{
		{[]float64{20, 930}, Log, true, 10, 1000},
		{[]float64{0.03, 0.04, -5}, Log, true, 0.02, 0.05},
		{[]float64{100, 300}, Linear, true, 0, 315},
		{[]float64{100, 300}, Linear, false, 90, 310},
		{[]float64{7}, Linear, false, 5.9, 8.1},
	} {
		lo, hi, err := fitRange(c.vs, c.scale, c.fromZero)
		require.NoError(t, err)
		assert.InDelta(t, c.lo, lo, 1e-9, "%v", c.vs)
		assert.InDelta(t, c.hi, hi, 1e-9, "%v", c.vs)
	}
}

// Line stays inside its clip rectangle.
func TestPlotLineClip(t *testing.T) {
	cv, err := NewCanvas(50, 50, White)
	require.NoError(t, err)
	clip := image.Rect(10, 10, 30, 30)
	cv.Line(image.Pt(-20, 0), image.Pt(60, 45), 3, Black, clip)
	inside := 0
	for y := range 50 {
		for x := range 50 {
			if px := cv.Image().RGBAAt(x, y); px != White {
				require.True(t, image.Pt(x, y).In(clip), "pixel (%d, %d)", x, y)
				inside++
			}
		}
	}
	assert.Greater(t, inside, 20*2, "the part inside the clip, 3 pixels thick")
}

func TestPlotNewCanvasErrors(t *testing.T) {
	for _, size := range []image.Point{{0, 1}, {1, -1}, {MaxSide + 1, 1}} {
		_, err := NewCanvas(size.X, size.Y, White)
		assert.ErrorContains(t, err, "each side must be 1…16384", "%v", size)
	}
	c, err := NewCanvas(3, 2, Grey)
	require.NoError(t, err)
	for i := 0; i < len(c.Image().Pix); i += 4 {
		require.Equal(t, []uint8{128, 128, 128, 255}, c.Image().Pix[i:i+4])
	}
}
