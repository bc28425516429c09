package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/modeldir"
	"github.com/vkrun/vkrun/internal/plot"
)

func init() {
	register("attention", "draw the attention probabilities one layer's kernel computed for a prompt", cmdAttention)
}

// maxAttentionTokens caps the prompt: past it the token pieces on the axes
// no longer fit a cell.
const maxAttentionTokens = 128

// attentionCell is the side in pixels of one (query, key) cell.
const attentionCell = 14

// attentionText is the text scale: each font pixel is 2×2.
const attentionText = 2

// attentionProbs loads the model in the CPU layout (whose kernel alone
// records probabilities), prefills ids and returns head's probabilities
// (positions, positions) with the layer's map and the token pieces.
func attentionProbs(path string, ids []int, text string, layer, head, window, keep int) ([][]float32, *vkrun.AttentionMap, []string, error) {
	opts := []vkrun.Option{vkrun.WithLayout("cpu"), vkrun.WithKeep(keep)}
	if window >= 0 {
		opts = append(opts, vkrun.WithWindow(window))
	}
	ctx := context.Background()
	m, err := vkrun.Load(ctx, path, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	defer m.Close()
	tok := m.Tokenizer()
	if ids == nil {
		if tok == nil {
			return nil, nil, nil, fmt.Errorf("%s has no tokenizer: give --prompt-tokens", path)
		}
		ids = tok.EncodeWith(text, tok.AddBOS())
	}
	if len(ids) == 0 || len(ids) > maxAttentionTokens {
		return nil, nil, nil, fmt.Errorf("the prompt is %d tokens: the picture shows 1…%d", len(ids), maxAttentionTokens)
	}
	s, err := m.NewSession()
	if err != nil {
		return nil, nil, nil, err
	}
	defer s.Close()
	a, err := s.ProbeAttention(ctx, ids, layer)
	if err != nil {
		return nil, nil, nil, err
	}
	if head < 0 || head >= a.Heads {
		return nil, nil, nil, fmt.Errorf("--head %d of %d heads (want 0…%d)", head, a.Heads, a.Heads-1)
	}
	pieces := make([]string, len(ids))
	for i, id := range ids {
		pieces[i] = strconv.Itoa(id)
		if tok != nil {
			pieces[i] = printable(tok.TokenText(id))
		}
	}
	return a.Probs[head], a, pieces, nil
}

// printable is a piece with every byte outside printable ASCII as '?'
// (the font's 95 glyphs) and spaces as '_'.
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			b.WriteByte('_')
		case c > ' ' && c < 0x7f:
			b.WriteByte(c)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// attentionPicture draws probs as a heatmap, queries down, keys across,
// white where a query attends nothing. It returns the data frame.
func attentionPicture(title string, probs [][]float32, a *vkrun.AttentionMap, pieces []string) (*plot.Canvas, image.Rectangle, error) {
	n := len(probs)
	// The keys' pieces run up the page below the frame (they would
	// overlap across it); the queries' pieces are the y ticks.
	var yt, xt []plot.Tick
	longest := 0
	for i, p := range pieces {
		yt = append(yt, plot.Tick{Value: float64(i), Label: p})
		xt = append(xt, plot.Tick{Value: float64(i)})
		longest = max(longest, plot.TextWidth(p, attentionText))
	}
	side := n * attentionCell
	ax := plot.Axes{YDown: true, TextScale: attentionText, // the title is drawn across the whole canvas
		X: plot.Axis{Min: -0.5, Max: float64(n) - 0.5, Ticks: xt},
		Y: plot.Axis{Label: "query", Min: -0.5, Max: float64(n) - 0.5, Ticks: yt}}
	ax.Fit(image.Rect(0, 0, side, side))
	th := plot.TextHeight(attentionText)
	d := image.Pt(receptiveMargin, receptiveMargin+2*th).Sub(ax.Area.Min)
	ax.Area, ax.Frame = ax.Area.Add(d), ax.Frame.Add(d)
	width := max(ax.Area.Max.X, receptiveMargin+plot.TextWidth(title, attentionText)) + receptiveMargin
	height := ax.Area.Max.Y + longest + 2*th + 2*receptiveMargin
	c, err := plot.NewCanvas(width, height, plot.White)
	if err != nil {
		return nil, image.Rectangle{}, err
	}
	c.Text(image.Pt(receptiveMargin, receptiveMargin), title, plot.TopLeft, plot.Black, attentionText)
	if err := ax.Draw(c); err != nil {
		return nil, image.Rectangle{}, err
	}
	for i, p := range pieces {
		x := ax.Frame.Min.X + i*ax.Frame.Dx()/n + ax.Frame.Dx()/(2*n)
		c.TextUp(image.Pt(x, ax.Area.Max.Y+receptiveMargin/2), p, plot.Top, plot.Black, attentionText)
	}
	c.Text(image.Pt(ax.Frame.Min.X+ax.Frame.Dx()/2, ax.Area.Max.Y+receptiveMargin+longest), "key", plot.Top, plot.Black, attentionText)
	hm := plot.Heatmap{Rows: n, Cols: n, Values: make([]float64, n*n), Min: 0, Max: 1, Ramp: plot.Blues}
	for i := range n {
		for j := range n {
			hm.Values[i*n+j] = math.NaN()
			if a.Attended(i, j) {
				hm.Values[i*n+j] = float64(probs[i][j])
			}
		}
	}
	if err := hm.Draw(c, ax.Frame); err != nil {
		return nil, image.Rectangle{}, err
	}
	return c, ax.Frame, nil
}

func cmdAttention(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("attention", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("m", "", "model file (GGUF) or checkpoint directory (default: stories260K)")
	prompt := fs.String("p", "", "prompt text")
	promptTokens := fs.String("prompt-tokens", "", "prompt as comma-separated token ids")
	layer := fs.Int("layer", 0, "the layer to draw")
	head := fs.Int("head", 0, "the query head to draw")
	window := fs.Int("window", -1, "sliding window of the local layers (-1: the file's)")
	keep := fs.Int("keep", 0, "sink positions 0…N−1 beside every band")
	out := fs.String("o", "", "write the picture to this PNG file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "vkrun attention: "+format+"\n", a...)
		return code
	}
	var ids []int
	switch {
	case fs.NArg() > 0:
		return fail(2, "unexpected argument %q", fs.Arg(0))
	case *out == "":
		return fail(2, "-o FILE.png is required")
	case (*prompt == "") == (*promptTokens == ""):
		return fail(2, "give one of -p TEXT and --prompt-tokens IDS")
	case *keep < 0:
		return fail(2, "--keep %d: want ≥ 0", *keep)
	}
	if *promptTokens != "" {
		for _, s := range strings.Split(*promptTokens, ",") {
			id, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || id < 0 {
				return fail(2, "--prompt-tokens: %q is not a token id", s)
			}
			ids = append(ids, id)
		}
	}
	path := *model
	if path == "" {
		path = modeldir.Stories260K()
		if _, err := os.Stat(path); err != nil {
			return fail(1, "the default model %s is missing: run scripts/setup.sh, or pass -m FILE", path)
		}
	}
	probs, a, pieces, err := attentionProbs(path, ids, *prompt, *layer, *head, *window, *keep)
	if err != nil {
		return fail(1, "%s", oneLine(err))
	}
	title := fmt.Sprintf("%s: layer %d, head %d", filepath.Base(path), *layer, *head)
	if a.Window > 0 {
		title += fmt.Sprintf(", window %d", a.Window)
	}
	if a.Sinks > 0 {
		title += ", " + plural(a.Sinks, "sink")
	}
	c, _, err := attentionPicture(title, probs, a, pieces)
	if err == nil {
		err = c.WritePNG(*out)
	}
	if err != nil {
		return fail(1, "%s", oneLine(err))
	}
	return 0
}
