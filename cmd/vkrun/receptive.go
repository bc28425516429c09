package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"path/filepath"

	"github.com/vkrun/vkrun/internal/plot"
	"github.com/vkrun/vkrun/loader"
)

func init() {
	register("receptive", "draw which input positions can reach each output, layer by layer (sliding windows and sinks)", cmdReceptive)
}

// maxReceptivePositions bounds --positions: a picture of more is too large
// to look at (make the window smaller with --window instead).
const maxReceptivePositions = 1024

// receptiveField is which input positions can influence each output
// position after each layer. A query at position i of a layer with window
// W reads the keys j ≤ i with j < keep (the sinks) or j ≥ i−W+1 (a global
// layer, W = 0, reads every j ≤ i), so after layers 0…l position i depends
// on the inputs ∪ over its keys j of what j depended on after layer l−1.
// That union is always the sinks [0, min(keep, i+1)) and one run of
// positions ending at i, which bandStart records.
type receptiveField struct {
	windows   []int // (layers,) each layer's W; 0 is global
	keep      int   // sink positions 0…keep−1
	positions int
	// bandStart[l][i] is the first input of the run that ends at i and
	// that position i reaches after layers 0…l.
	bandStart [][]int // (layers, positions)
}

func newReceptiveField(windows []int, keep, positions int) receptiveField {
	f := receptiveField{windows: windows, keep: keep, positions: positions, bandStart: make([][]int, len(windows))}
	prev := make([]int, positions) // before layer 0, position i is input i
	for i := range prev {
		prev[i] = i
	}
	for l, w := range windows {
		cur := make([]int, positions)
		for i := range cur {
			first := 0 // the first key of the band: every key for a global layer
			if w > 0 {
				first = max(0, i-w+1)
			}
			// The band's keys first…i reach prev[first]…i: each key j
			// reaches a run ending at j, and prev never decreases in j.
			// The sinks' own fields lie inside the sinks.
			cur[i] = prev[first]
		}
		f.bandStart[l] = cur
		prev = cur
	}
	return f
}

// sinks is how many sink positions position i reaches (those ≤ i).
func (f receptiveField) sinks(i int) int { return min(f.keep, i+1) }

// reaches reports whether input j can influence output i after layers 0…l.
func (f receptiveField) reaches(l, i, j int) bool {
	return j <= i && (j < f.sinks(i) || j >= f.bandStart[l][i])
}

// earliest is the earliest input that position i reaches after layers 0…l.
func (f receptiveField) earliest(l, i int) int {
	if f.sinks(i) > 0 {
		return 0
	}
	return f.bandStart[l][i]
}

// firstLayers is, for each output i and input j, the first layer after
// which j reaches i, or −1 when none does. A field only grows from one
// layer to the next (a query attends to its own position), so j reaches i
// after layer l exactly when first[i][j] is in 0…l.
func (f receptiveField) firstLayers() [][]int {
	first := make([][]int, f.positions) // (positions, positions)
	for i := range first {
		first[i] = make([]int, f.positions)
		for j := range first[i] {
			first[i][j] = -1
		}
		for j := range f.sinks(i) {
			first[i][j] = 0
		}
		end := i + 1 // the band so far is end…i
		for l := range f.windows {
			for j := f.bandStart[l][i]; j < end; j++ {
				if first[i][j] < 0 {
					first[i][j] = l
				}
			}
			end = min(end, f.bandStart[l][i])
		}
	}
	return first
}

// ranges is what position i reaches after layers 0…l, as [first, last]
// runs in ascending order.
func (f receptiveField) ranges(l, i int) [][2]int {
	s, b := f.sinks(i), f.bandStart[l][i]
	switch {
	case s == 0:
		return [][2]int{{b, i}}
	case b <= s:
		return [][2]int{{0, i}}
	}
	return [][2]int{{0, s - 1}, {b, i}}
}

// receptiveReport is receptive --json.
type receptiveReport struct {
	Model     string           `json:"model"`
	Positions int              `json:"positions"`
	Keep      int              `json:"keep"`
	Layers    []receptiveLayer `json:"layers"`
}

type receptiveLayer struct {
	Layer  int `json:"layer"`
	Window int `json:"window"` // 0: global
	// Earliest[p] is the earliest input that position p reaches after
	// layers 0…Layer.
	Earliest []int `json:"earliest"`
	// Reach[p] is every input that position p reaches after layers
	// 0…Layer, as [first, last] runs.
	Reach [][][2]int `json:"reach"`
}

func (f receptiveField) report(model string) receptiveReport {
	r := receptiveReport{Model: model, Positions: f.positions, Keep: f.keep}
	for l, w := range f.windows {
		rl := receptiveLayer{Layer: l, Window: w, Earliest: make([]int, f.positions), Reach: make([][][2]int, f.positions)}
		for i := range f.positions {
			rl.Earliest[i], rl.Reach[i] = f.earliest(l, i), f.ranges(l, i)
		}
		r.Layers = append(r.Layers, rl)
	}
	return r
}

// The picture's sizes and colours.
const (
	receptiveText   = 2   // text scale: each font pixel is 2×2
	receptiveSide   = 256 // a panel's data area is about this many pixels square
	receptiveCols   = 4   // panels per row
	receptiveMargin = 12  // around the figure and between panels
)

var receptiveSink = color.RGBA{230, 85, 13, 255} // orange: the sink columns

// receptiveCell is the side in pixels of one (query, input) cell.
func receptiveCell(positions int) int { return max(1, receptiveSide/positions) }

// panel is layer l's axes, the top-left corner of their area at at.
func (f receptiveField) panel(l int, at image.Point) plot.Axes {
	side := f.positions * receptiveCell(f.positions)
	title := fmt.Sprintf("layer %d: window %d", l, f.windows[l])
	if f.windows[l] == 0 {
		title = fmt.Sprintf("layer %d: global", l)
	}
	pos := func(label string) plot.Axis {
		return plot.Axis{Label: label, Min: -0.5, Max: float64(f.positions) - 0.5}
	}
	ax := plot.Axes{Title: title, X: pos("input position"), Y: pos("query position"), YDown: true, TextScale: receptiveText}
	ax.Fit(image.Rect(0, 0, side, side))
	d := at.Sub(ax.Area.Min)
	ax.Area, ax.Frame = ax.Area.Add(d), ax.Frame.Add(d)
	return ax
}

// layerColors are the shades of the layer after which an input is first
// reached: dark for layer 0 (the first window's band), lighter for each
// layer that widens it.
func (f receptiveField) layerColors() []color.RGBA {
	ramp := plot.Blues.Reversed()
	cs := make([]color.RGBA, len(f.windows))
	for l := range cs {
		cs[l] = ramp.At(float64(l) / float64(max(len(cs)-1, 1)))
	}
	return cs
}

// picture draws a panel per layer: after layers 0…l, the inputs (columns)
// that each query position (rows) can reach, shaded by the layer that
// first reaches them, the sinks in orange, everything else the background.
// It returns each panel's data frame.
func (f receptiveField) picture(title string) (*plot.Canvas, []image.Rectangle, error) {
	if len(f.windows) == 0 {
		return nil, nil, fmt.Errorf("the model has no layers to draw")
	}
	layerColor := f.layerColors()
	legend := []plot.LegendEntry{}
	if f.keep > 0 {
		legend = append(legend, plot.LegendEntry{Label: fmt.Sprintf("sink (%d kept)", f.keep), Color: receptiveSink})
	}
	for l, c := range layerColor {
		legend = append(legend, plot.LegendEntry{Label: fmt.Sprintf("layer %d", l), Color: c})
	}
	panel := f.panel(0, image.Point{}).Area.Size()
	cols := min(len(f.windows), receptiveCols)
	rows := (len(f.windows) + cols - 1) / cols
	width := 2*receptiveMargin + max(cols*panel.X+(cols-1)*receptiveMargin, plot.TextWidth(title, receptiveText))
	// The header: the title, then "first reached:" and the legend.
	th := plot.TextHeight(receptiveText)
	lead := "first reached:"
	legendAt := image.Pt(receptiveMargin+plot.TextWidth(lead, receptiveText)+2*plot.Advance*receptiveText, receptiveMargin+th+th/2)
	legendBox := plot.LegendBox(legendAt, legend, receptiveText, width-receptiveMargin-legendAt.X)
	top := legendBox.Max.Y + receptiveMargin
	height := top + rows*panel.Y + (rows-1)*receptiveMargin + receptiveMargin
	c, err := plot.NewCanvas(width, height, plot.White)
	if err != nil {
		return nil, nil, fmt.Errorf("%d layers of %d positions: %w", len(f.windows), f.positions, err)
	}
	c.Text(image.Pt(receptiveMargin, receptiveMargin), title, plot.TopLeft, plot.Black, receptiveText)
	c.Text(image.Pt(receptiveMargin, legendAt.Y), lead, plot.TopLeft, plot.Black, receptiveText)
	c.Legend(legendAt, legend, plot.Black, receptiveText, width-receptiveMargin-legendAt.X)

	n := f.positions
	band := plot.Heatmap{Rows: n, Cols: n, Values: make([]float64, n*n), Min: 0, Max: float64(max(len(f.windows)-1, 1)), Ramp: plot.Ramp(layerColor)}
	sinks := plot.Heatmap{Rows: n, Cols: n, Values: make([]float64, n*n), Ramp: plot.Ramp{receptiveSink}}
	first := f.firstLayers()
	var frames []image.Rectangle
	for l := range f.windows {
		ax := f.panel(l, image.Pt(receptiveMargin+(l%cols)*(panel.X+receptiveMargin), top+(l/cols)*(panel.Y+receptiveMargin)))
		if err := ax.Draw(c); err != nil {
			return nil, nil, err
		}
		for i := range n {
			for j := range n {
				b, s := math.NaN(), math.NaN()
				switch k := first[i][j]; {
				case k < 0 || k > l: // not (yet) reached
				case j < f.sinks(i):
					s = 1
				default:
					b = float64(k)
				}
				band.Values[i*n+j], sinks.Values[i*n+j] = b, s
			}
		}
		if err := band.Draw(c, ax.Frame); err != nil {
			return nil, nil, err
		}
		if err := sinks.Draw(c, ax.Frame); err != nil {
			return nil, nil, err
		}
		frames = append(frames, ax.Frame)
	}
	return c, frames, nil
}

func cmdReceptive(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("receptive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("m", "", "model file (GGUF) or checkpoint directory")
	window := fs.Int("window", -1, "sliding window of the local layers (as run's --window; -1: the file's)")
	keep := fs.Int("keep", 0, "sink positions 0…N−1 that every query also attends to")
	positions := fs.Int("positions", 64, fmt.Sprintf("positions to draw (1…%d)", maxReceptivePositions))
	out := fs.String("o", "", "write the picture to this PNG file")
	asJSON := fs.Bool("json", false, "print, per layer, the inputs each position reaches")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "vkrun receptive: "+format+"\n", a...)
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(2, "unexpected argument %q", fs.Arg(0))
	case *model == "":
		return fail(2, "-m FILE is required")
	case *out == "" && !*asJSON:
		return fail(2, "give -o FILE.png, --json or both")
	case *window < -1:
		return fail(2, "--window %d: want ≥ 0 (0: every layer global), or -1 for the file's", *window)
	case *keep < 0:
		return fail(2, "--keep %d: want ≥ 0", *keep)
	case *positions < 1 || *positions > maxReceptivePositions:
		return fail(2, "--positions %d: want 1…%d (a smaller --window shows the same shape in fewer positions)", *positions, maxReceptivePositions)
	}
	opts := []loader.Option{loader.WithoutTokenizer()}
	if *window >= 0 {
		opts = append(opts, loader.WithWindow(*window))
	}
	m, err := loader.Open(*model, opts...)
	if err != nil {
		return fail(1, "%s", oneLine(err))
	}
	windows := make([]int, m.Config.NumLayers)
	for l := range windows {
		windows[l] = m.Config.Layer(l).Window
	}
	m.Close()
	f := newReceptiveField(windows, *keep, *positions)
	if *out != "" {
		title := fmt.Sprintf("receptive field of %s: %s, %d positions", filepath.Base(*model), plural(len(windows), "layer"), *positions)
		if *keep > 0 {
			title += ", " + plural(*keep, "sink")
		}
		c, _, err := f.picture(title)
		if err == nil {
			err = c.WritePNG(*out)
		}
		if err != nil {
			return fail(1, "%s", oneLine(err))
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(f.report(*model)); err != nil {
			return fail(1, "%v", err)
		}
	}
	return 0
}

// plural is "1 layer" or "n layers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
