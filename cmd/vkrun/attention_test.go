package main

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/modeldir"
	"github.com/vkrun/vkrun/internal/plot"
)

// TestAttentionPicture runs vkrun attention on stories260K with a window of
// 6 and 2 sinks: the probabilities it draws sum to 1 within 1e-5 per query
// before colouring and are 0 off the band and sinks; the PNG decodes, and
// every pixel of the data frame outside the band and the sinks is exactly
// the background.
func TestAttentionPicture(t *testing.T) {
	path := modeldir.Stories260K()
	if _, err := os.Stat(path); err != nil {
		t.Skip("stories260K.gguf missing (run scripts/setup.sh)")
	}
	const text = "Once upon a time there was a little girl"
	probs, a, pieces, err := attentionProbs(path, nil, text, 2, 1, 6, 2)
	require.NoError(t, err)
	n := len(probs)
	require.Equal(t, n, len(pieces))
	require.Greater(t, n, 8, "the prompt must outrun the window and sinks")
	for i := range n {
		var sum float64
		for j, x := range probs[i] {
			if a.Attended(i, j) {
				sum += float64(x)
			} else {
				assert.Zero(t, x, "query %d key %d", i, j)
			}
		}
		assert.InDelta(t, 1, sum, 1e-5, "query %d", i)
	}

	out := filepath.Join(t.TempDir(), "attn.png")
	var stderr bytes.Buffer
	require.Equal(t, 0, cmdAttention([]string{"-m", path, "-p", text, "--layer", "2", "--head", "1", "--window", "6", "--keep", "2", "-o", out}, &bytes.Buffer{}, &stderr), stderr.String())
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	_, frame, err := attentionPicture("t", probs, a, pieces)
	require.NoError(t, err)
	require.True(t, frame.In(img.Bounds()))
	bg := plot.White
	for y := frame.Min.Y; y < frame.Max.Y; y++ {
		for x := frame.Min.X; x < frame.Max.X; x++ {
			i, j := (y-frame.Min.Y)*n/frame.Dy(), (x-frame.Min.X)*n/frame.Dx()
			if a.Attended(i, j) {
				continue
			}
			r, g, b, al := img.At(x, y).RGBA()
			br, bgG, bb, ba := bg.RGBA()
			require.Equal(t, [4]uint32{br, bgG, bb, ba}, [4]uint32{r, g, b, al}, "pixel %v (query %d, key %d) is off the band and sinks", image.Pt(x, y), i, j)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-m", path, "-p", text, "--layer", "9", "-o", out}, "layer 9"},
		{[]string{"-m", path, "-p", text, "--head", "8", "-o", out}, "--head 8"},
		{[]string{"-m", path, "-o", out}, "give one of -p"},
		{[]string{"-m", path, "-p", text}, "-o FILE.png"},
	} {
		var e bytes.Buffer
		assert.NotZero(t, cmdAttention(c.args, &bytes.Buffer{}, &e), c.args)
		assert.Contains(t, e.String(), c.want, c.args)
	}
}
