package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// TestProbeAttention prefills a prompt longer than the window, with 2 sinks,
// in chunks of 5, with the probe on layer 1: every query's probabilities
// sum to 1 within 1e-5 per head and are exactly 0 off its keys, and the
// session ends where Prefill ends with the same logits bit for bit (the
// debug kernel's output is the normal one's). A bad layer is refused.
func TestProbeAttention(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	if !d.Features.SubgroupArithmetic {
		t.Skip("the debug kernel is the CPU layout's, which needs subgroup arithmetic")
	}
	cfg := tinyConfig
	cfg.Window = 6
	lm := openSynthetic(t, cfg, loader.F32)
	m, err := Load(d, lm, Options{Layout: ops.ForceCPU, Keep: 2, Chunk: 5})
	require.NoError(t, err)
	defer m.Close()
	var tokens []int
	for i := range 17 {
		tokens = append(tokens, 3+(i*11)%61)
	}
	ctx := context.Background()
	ref, err := m.NewSession()
	require.NoError(t, err)
	defer ref.Close()
	_, err = ref.Prefill(ctx, tokens)
	require.NoError(t, err)
	want, err := ref.Decode(ctx, 7)
	require.NoError(t, err)
	want = append([]float32(nil), want...)

	s, err := m.NewSession()
	require.NoError(t, err)
	defer s.Close()
	a, err := s.ProbeAttention(ctx, tokens, 1)
	require.NoError(t, err)
	require.Equal(t, cfg.NumHeads, a.Heads)
	require.Equal(t, len(tokens), a.Positions)
	assert.Equal(t, 6, a.Window)
	assert.Equal(t, 2, a.Sinks)
	for h := range a.Heads {
		for i := range a.Positions {
			var sum float64
			for j, x := range a.Probs[h][i] {
				if a.Attended(i, j) {
					sum += float64(x)
					assert.Positive(t, x, "head %d query %d key %d", h, i, j)
				} else {
					assert.Zero(t, x, "head %d query %d key %d is not attended", h, i, j)
				}
			}
			assert.InDelta(t, 1, sum, 1e-5, "head %d query %d", h, i)
		}
	}
	require.Equal(t, len(tokens), s.Pos())
	got, err := s.Decode(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, want, got, "logits after the probe vs after Prefill")

	_, err = s.ProbeAttention(ctx, tokens, cfg.NumLayers)
	assert.ErrorContains(t, err, "want 0…")
	_, err = s.ProbeAttention(ctx, nil, 0)
	assert.ErrorContains(t, err, "no tokens")
}
