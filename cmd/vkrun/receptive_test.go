package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/plot"
	"github.com/vkrun/vkrun/loader"
)

// writeReceptiveModel writes a tiny llama file with the given layers (nil:
// layers layers of window w).
func writeReceptiveModel(t *testing.T, layers, w int, specs []loader.LayerSpec) string {
	t.Helper()
	cfg := loader.Config{Arch: "llama", Dim: 16, NumLayers: layers, NumHeads: 2, NumKVHeads: 2, FFNDim: 32, VocabSize: 300,
		Window: w, RopeTheta: 10000, Layers: specs}
	path := filepath.Join(t.TempDir(), "swa.gguf")
	require.NoError(t, loader.WriteSynthetic(path, cfg, loader.F32, 1, nil))
	return path
}

// bruteReach is the receptive field by its definition: reach[l][i] is the
// set of inputs (a bit set) that output i depends on after layers 0…l,
// the union over the keys j of layer l's query i of reach[l−1][j].
func bruteReach(windows []int, keep, n int) [][]*big.Int {
	prev := make([]*big.Int, n)
	for i := range prev {
		prev[i] = new(big.Int).SetBit(new(big.Int), i, 1)
	}
	var out [][]*big.Int
	for _, w := range windows {
		cur := make([]*big.Int, n)
		for i := range cur {
			cur[i] = new(big.Int)
			for j := 0; j <= i; j++ {
				if w == 0 || j < keep || j >= i-w+1 {
					cur[i].Or(cur[i], prev[j])
				}
			}
		}
		out = append(out, cur)
		prev = cur
	}
	return out
}

// The interval form of receptiveField agrees with the definition for every
// layer, query and input.
func TestReceptiveMatchesDefinition(t *testing.T) {
	for _, c := range []struct {
		windows []int
		keep    int
	}{
		{[]int{3, 3, 3, 3}, 0},
		{[]int{3, 3, 3, 3}, 2},
		{[]int{4, 0, 2}, 0},
		{[]int{2, 5, 2, 5}, 3},
		{[]int{1, 1, 1}, 1},
		{[]int{1, 1, 1}, 0},
		{[]int{40}, 0},
		{[]int{0}, 5},
		{[]int{5, 5}, 30}, // more sinks than positions
	} {
		t.Run(fmt.Sprintf("windows=%v/keep=%d", c.windows, c.keep), func(t *testing.T) {
			const n = 24
			f := newReceptiveField(c.windows, c.keep, n)
			want := bruteReach(c.windows, c.keep, n)
			first := f.firstLayers()
			for i := range n {
				for j := range n {
					k := -1
					for l := range c.windows {
						if want[l][i].Bit(j) == 1 {
							k = l
							break
						}
					}
					require.Equal(t, k, first[i][j], "the first layer after which %d reaches %d", i, j)
				}
			}
			for l := range c.windows {
				for i := range n {
					for j := range n {
						require.Equal(t, want[l][i].Bit(j) == 1, f.reaches(l, i, j), "layer %d, query %d, input %d", l, i, j)
					}
					var got []int
					for _, r := range f.ranges(l, i) {
						for j := r[0]; j <= r[1]; j++ {
							got = append(got, j)
						}
					}
					var wantSet []int
					for j := range n {
						if want[l][i].Bit(j) == 1 {
							wantSet = append(wantSet, j)
						}
					}
					require.Equal(t, wantSet, got, "ranges of layer %d, query %d", l, i)
					require.Equal(t, wantSet[0], f.earliest(l, i), "earliest of layer %d, query %d", l, i)
				}
			}
		})
	}
}

func runReceptive(t *testing.T, args ...string) receptiveReport {
	t.Helper()
	var o, e bytes.Buffer
	code := cmdReceptive(append([]string{"--json"}, args...), &o, &e)
	require.Equal(t, 0, code, e.String())
	var r receptiveReport
	require.NoError(t, json.Unmarshal(o.Bytes(), &r))
	return r
}

// reachSet expands a position's runs.
func reachSet(runs [][2]int) map[int]bool {
	s := map[int]bool{}
	for _, r := range runs {
		for j := r[0]; j <= r[1]; j++ {
			s[j] = true
		}
	}
	return s
}

// On a file with only local layers of window W, position p reaches back to
// max(0, p − L·(W−1)) after L layers and no further; a global layer reaches
// position 0; the sinks 0…N−1 are reached from every position.
func TestReceptiveJSON(t *testing.T) {
	const n = 48
	local := func(w int) loader.LayerSpec { return loader.LayerSpec{Window: w, RopeTheta: 10000, RopeScale: 1} }
	global := loader.LayerSpec{RopeTheta: 10000, RopeScale: 1}
	for _, c := range []struct {
		name    string
		layers  int
		window  int // the file's
		specs   []loader.LayerSpec
		args    []string
		windows []int // each layer's window as the command reads it
		keep    int
	}{
		{name: "file window 4, 3 layers", layers: 3, window: 4, windows: []int{4, 4, 4}},
		{name: "file window 2, 5 layers", layers: 5, window: 2, windows: []int{2, 2, 2, 2, 2}},
		{name: "--window 3 overrides 8", layers: 2, window: 8, args: []string{"--window", "3"}, windows: []int{3, 3}},
		{name: "--window 5 on a file without", layers: 2, window: 0, args: []string{"--window", "5"}, windows: []int{5, 5}},
		{name: "--window 0 is global", layers: 2, window: 4, args: []string{"--window", "0"}, windows: []int{0, 0}},
		{name: "a global layer", layers: 3, window: 4, specs: []loader.LayerSpec{local(4), global, local(4)}, windows: []int{4, 0, 4}},
		{name: "--window keeps the global layer", layers: 3, window: 4, specs: []loader.LayerSpec{local(4), global, local(4)},
			args: []string{"--window", "2"}, windows: []int{2, 0, 2}},
		{name: "2 sinks", layers: 3, window: 4, args: []string{"--keep", "2"}, windows: []int{4, 4, 4}, keep: 2},
		{name: "5 sinks, window 3", layers: 4, window: 3, args: []string{"--keep", "5"}, windows: []int{3, 3, 3, 3}, keep: 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeReceptiveModel(t, c.layers, c.window, c.specs)
			r := runReceptive(t, append([]string{"-m", path, "--positions", fmt.Sprint(n)}, c.args...)...)
			assert.Equal(t, n, r.Positions)
			assert.Equal(t, c.keep, r.Keep)
			require.Len(t, r.Layers, c.layers)
			// lo is each position's earliest input outside the sinks after
			// the layers so far: W−1 further back per local layer, 0 from
			// a global layer on.
			lo := make([]int, n)
			for p := range lo {
				lo[p] = p
			}
			for l, w := range c.windows {
				got := r.Layers[l]
				assert.Equal(t, l, got.Layer)
				require.Equal(t, w, got.Window, "layer %d", l)
				require.Len(t, got.Earliest, n)
				require.Len(t, got.Reach, n)
				for p := range lo {
					if w == 0 {
						lo[p] = 0
					} else {
						lo[p] = max(0, lo[p]-(w-1))
					}
				}
				for p := range n {
					want := lo[p]
					if c.keep > 0 {
						want = 0
					}
					require.Equal(t, want, got.Earliest[p], "layer %d, position %d", l, p)
					set := reachSet(got.Reach[p])
					for j := range n {
						reached := j <= p && (j < c.keep || j >= lo[p])
						require.Equal(t, reached, set[j], "layer %d: does position %d reach input %d?", l, p, j)
					}
				}
			}
			if !slices.Contains(c.windows, 0) && c.keep == 0 {
				// The statement: max(0, p − L·(W−1)) after all layers.
				last, w := r.Layers[c.layers-1], c.windows[0]
				for p := range n {
					assert.Equal(t, max(0, p-c.layers*(w-1)), last.Earliest[p], "position %d", p)
				}
			}
		})
	}
}

// The picture decodes, has the layout's size, and every cell outside the
// receptive field is exactly the background; every cell inside is one
// colour that is not the background (orange for the sinks).
func TestReceptivePNG(t *testing.T) {
	const n, keep = 16, 2
	local := loader.LayerSpec{Window: 3, RopeTheta: 10000, RopeScale: 1}
	global := loader.LayerSpec{RopeTheta: 10000, RopeScale: 1}
	windows := []int{3, 3, 0, 3, 3}
	path := writeReceptiveModel(t, len(windows), 3, []loader.LayerSpec{local, local, global, local, local})
	out := filepath.Join(t.TempDir(), "rf.png")
	var o, e bytes.Buffer
	code := cmdReceptive([]string{"-m", path, "--keep", fmt.Sprint(keep), "--positions", fmt.Sprint(n), "-o", out}, &o, &e)
	require.Equal(t, 0, code, e.String())
	assert.Empty(t, o.String())

	rgba := decodePNG(t, out)

	f := newReceptiveField(windows, keep, n)
	want, frames, err := f.picture("")
	require.NoError(t, err)
	require.Equal(t, want.Bounds(), rgba.Rect, "the image's size")
	require.Len(t, frames, len(windows))
	cell := receptiveCell(n)
	bg := want.Background()
	first, shade := f.firstLayers(), f.layerColors()
	for l, fr := range frames {
		require.True(t, fr.In(rgba.Rect), "layer %d's frame %v lies outside the image %v", l, fr, rgba.Rect)
		require.Equal(t, image.Pt(n*cell, n*cell), fr.Size(), "layer %d: %d positions of %d pixels", l, n, cell)
		for i := range n {
			for j := range n {
				r := image.Rect(fr.Min.X+j*cell, fr.Min.Y+i*cell, fr.Min.X+(j+1)*cell, fr.Min.Y+(i+1)*cell)
				px := rgba.RGBAAt(r.Min.X, r.Min.Y)
				for y := r.Min.Y; y < r.Max.Y; y++ {
					for x := r.Min.X; x < r.Max.X; x++ {
						require.Equal(t, px, rgba.RGBAAt(x, y), "layer %d, cell (%d, %d) is not one colour", l, i, j)
					}
				}
				switch {
				case !f.reaches(l, i, j):
					require.Equal(t, bg, px, "layer %d: query %d does not reach input %d, so its cell is the background", l, i, j)
				case j < keep:
					require.Equal(t, receptiveSink, px, "layer %d: input %d is a sink", l, j)
				default:
					require.NotEqual(t, bg, px, "layer %d: query %d reaches input %d", l, i, j)
					require.Equal(t, shade[first[i][j]], px, "layer %d: query %d reaches input %d first after layer %d", l, i, j, first[i][j])
				}
			}
		}
	}
}

// Bad flags are one line and status 2; a file that is not a model, status 1.
func TestReceptiveErrors(t *testing.T) {
	path := writeReceptiveModel(t, 2, 4, nil)
	notModel := filepath.Join(t.TempDir(), "not.gguf")
	require.NoError(t, os.WriteFile(notModel, []byte("not a model"), 0o644))
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-o", "x.png"}, 2, "-m FILE is required"},
		{[]string{"-m", path}, 2, "give -o FILE.png, --json or both"},
		{[]string{"-m", path, "--json", "--keep", "-1"}, 2, "--keep -1"},
		{[]string{"-m", path, "--json", "--positions", "0"}, 2, "--positions 0"},
		{[]string{"-m", path, "--json", "--positions", "5000"}, 2, "--positions 5000: want 1…1024"},
		{[]string{"-m", path, "--json", "--window", "-2"}, 2, "--window -2"},
		{[]string{"-m", path, "--json", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-m", notModel, "--json"}, 1, "not.gguf"},
		{[]string{"-m", path, "-o", filepath.Join(t.TempDir(), "no", "such", "dir.png")}, 1, "dir.png"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var o, e bytes.Buffer
			code := cmdReceptive(c.args, &o, &e)
			assert.Equal(t, c.code, code)
			assert.Equal(t, 1, strings.Count(e.String(), "\n"), "one line: %q", e.String())
			assert.Contains(t, e.String(), c.want)
			assert.Empty(t, o.String())
		})
	}
}

// bench --plot (its chart lives in bench.go).

// decodePNG reads a PNG file into RGBA pixels.
func decodePNG(t *testing.T, path string) *image.RGBA {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
	return rgba
}

// hasColor reports whether some pixel of img is c.
func hasColor(img *image.RGBA, c color.RGBA) bool {
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			if img.RGBAAt(x, y) == c {
				return true
			}
		}
	}
	return false
}

// A line per test, in the order the tests ran, its points in order of
// depth, whatever order --depth listed them in.
func TestBenchPlotLines(t *testing.T) {
	results := []benchResult{
		{Test: "pp64", Depth: 512, Mean: 800, Stddev: 10},
		{Test: "tg16", Depth: 512, Mean: 30, Stddev: 1},
		{Test: "pp64", Depth: 0, Mean: 900, Stddev: 20},
		{Test: "tg16", Depth: 0, Mean: 40, Stddev: 2},
	}
	lines := benchLines(results)
	require.Len(t, lines, 2)
	assert.Equal(t, "pp64", lines[0].Name)
	assert.Equal(t, []float64{0, 512}, lines[0].X)
	assert.Equal(t, []float64{900, 800}, lines[0].Y)
	assert.Equal(t, []float64{20, 10}, lines[0].Err)
	assert.Equal(t, "tg16", lines[1].Name)
	assert.Equal(t, []float64{0, 512}, lines[1].X)
	assert.Equal(t, []float64{40, 30}, lines[1].Y)

	c, err := benchChart("tiny on a test device", results)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "bench.png")
	require.NoError(t, c.WritePNG(path))
	img := decodePNG(t, path)
	assert.Equal(t, image.Pt(800, 500), img.Rect.Size())
	for i, l := range lines {
		assert.True(t, hasColor(img, plot.Palette[i]), "line %s in %v", l.Name, plot.Palette[i])
	}
}

// bench --plot on a synthetic model writes a PNG that decodes.
func TestBenchPlot(t *testing.T) {
	needVulkan(t)
	out := filepath.Join(t.TempDir(), "out.png")
	// -p 0: decode only, so that lavapipe compiles only the one-token kernels.
	_, errOut, code := runCLI("bench", "--synthetic", "tiny:q4_0", "-p", "0", "-n", "2", "-r", "1", "--depth", "0,16", "--plot", out)
	require.Equal(t, 0, code, errOut)
	img := decodePNG(t, out)
	assert.Equal(t, image.Pt(800, 500), img.Rect.Size())
	assert.True(t, hasColor(img, plot.Palette[0]), "the tg2 line")
}

// A --plot into a directory that does not exist fails before the tests run.
func TestBenchPlotNoDirectory(t *testing.T) {
	out := filepath.Join(t.TempDir(), "no", "such", "bench.png")
	_, errOut, code := runCLI("bench", "--synthetic", "tiny:q4_0", "-p", "0", "-n", "2", "--plot", out)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--plot "+out+": no directory")
	assert.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
}
