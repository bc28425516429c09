package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// firstMax is the index of the first largest logit: the device argmax's rule
// for finite logits.
func firstMax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// TestBatchMatchesSessions runs sequences through shared batch steps of
// every kind (prompt chunks with and without output beside single tokens,
// slots joining, leaving and starting again, rings wrapping) and checks each
// output against a lone session fed the same tokens one at a time: the
// logits are equal bit for bit and the greedy id is their first maximum.
func TestBatchMatchesSessions(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	for _, tc := range []struct {
		name string
		cfg  func() loader.Config
		dt   loader.DType
		dot  ops.DotChoice // AllDot: the GPU layout's integer-dot products, x rounded by norms and by dispatches of its own; AutoDot: the device's default
	}{
		{"llama q4_0", func() loader.Config { return tinyConfig }, loader.Q4_0, ops.AutoDot},
		{"llama q4_0 int-dot", func() loader.Config { return tinyConfig }, loader.Q4_0, ops.AllDot},
		{"gemma3 local and global f16", func() loader.Config {
			c := tinyConfig
			c.Arch, c.NumLayers, c.Window = "gemma3", 3, 8
			c.Layers = []loader.LayerSpec{{Window: 8, RopeTheta: 10000, RopeScale: 1}, {Window: 8, RopeTheta: 10000, RopeScale: 1}, {RopeTheta: 1e6, RopeScale: 8}}
			c.QKNorm, c.PostNorms, c.EmbedScale, c.Act = true, true, 8, loader.ActGELUTanh
			c.HeadDim, c.RopeDim, c.RopeTheta = 16, 16, 1e6
			return c
		}, loader.F16, ops.AutoDot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Chunk: 6, Context: 128, Dot: tc.dot}
			if tc.dot == ops.AllDot {
				if !d.Features.IntegerDotProduct {
					t.Skipf("%s has no shaderIntegerDotProduct", d.Info.Name)
				}
				opts.Layout = ops.ForceGPU
			}
			cfg := tc.cfg()
			lm := openSynthetic(t, cfg, tc.dt)
			m, err := Load(d, lm, opts)
			require.NoError(t, err)
			defer m.Close()
			if _, all := m.Library().IntegerDot(); tc.dot == ops.AllDot {
				require.True(t, all)
			}
			const slots = 3
			b, err := m.NewBatch(slots)
			require.NoError(t, err)
			defer b.Close()

			// Each slot's fed tokens since its last reset, and the lone
			// session's logits after each of them.
			rng := rand.New(rand.NewPCG(7, 11))
			fed := make([][]int, slots)
			want := func(toks []int) [][]float32 {
				s, err := m.NewSession()
				require.NoError(t, err)
				defer s.Close()
				all, err := s.PrefillAll(context.Background(), toks, 1)
				require.NoError(t, err)
				return all
			}
			type check struct {
				slot, seg, at int
			}
			var outs, steps int
			for step := 0; step < 40; step++ {
				var segs []Segment
				multi, total := false, 0
				for slot := range slots {
					if rng.IntN(4) == 0 {
						continue // idle this step
					}
					if rng.IntN(12) == 0 && len(fed[slot]) > 0 {
						b.Reset(slot)
						fed[slot] = nil
					}
					n := 1
					if rng.IntN(3) == 0 {
						n = 1 + rng.IntN(m.Chunk())
					}
					if total+n > b.MaxTokens()-(slots-1-slot) {
						n = 1 // keep room for a token of every later slot
					}
					total += n
					out := rng.IntN(4) != 0
					if n > 1 && out {
						if multi {
							out = false
						}
						multi = multi || out
					}
					toks := make([]int, n)
					for i := range toks {
						toks[i] = rng.IntN(cfg.VocabSize)
					}
					segs = append(segs, Segment{Slot: slot, Tokens: toks, Output: out})
				}
				if len(segs) == 0 {
					continue
				}
				logits := rng.IntN(2) == 0
				require.NoError(t, b.Step(context.Background(), segs, logits), "step %d", step)
				steps++
				var checks []check
				for i, sg := range segs {
					fed[sg.Slot] = append(fed[sg.Slot], sg.Tokens...)
					assert.Equal(t, len(fed[sg.Slot]), b.Pos(sg.Slot))
					if sg.Output {
						checks = append(checks, check{sg.Slot, i, len(fed[sg.Slot]) - 1})
					} else {
						assert.Equal(t, -1, b.ID(i))
					}
				}
				for _, c := range checks {
					ref := want(fed[c.slot])[c.at]
					assert.Equal(t, firstMax(ref), b.ID(c.seg), "step %d slot %d position %d: greedy id", step, c.slot, c.at)
					if logits {
						require.Equal(t, ref, b.Logits(c.seg, nil), "step %d slot %d position %d: logits", step, c.slot, c.at)
					} else {
						assert.Nil(t, b.Logits(c.seg, nil))
					}
					outs++
				}
			}
			assert.Greater(t, outs, 40)
			assert.LessOrEqual(t, len(b.steps), maxBatchRecordings)
			t.Logf("%d steps, %d outputs checked, %d recordings", steps, outs, len(b.steps))
		})
	}
}

// TestBatchStepRefusesBadShapes: a step no recording can take is refused
// with a clear error and moves no slot.
func TestBatchStepRefusesBadShapes(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	lm := openSynthetic(t, tinyConfig, loader.F32)
	m, err := Load(d, lm, Options{Chunk: 4})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.NewBatch(0)
	require.Error(t, err)
	b, err := m.NewBatch(2)
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, 6, b.MaxTokens())
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		segs []Segment
		want error
	}{
		{"none", nil, ErrBatchShape},
		{"slot out of range", []Segment{{Slot: 2, Tokens: []int{1}}}, ErrBatchShape},
		{"slot twice", []Segment{{Slot: 0, Tokens: []int{1}}, {Slot: 0, Tokens: []int{2}}}, ErrBatchShape},
		{"empty segment", []Segment{{Slot: 0}}, ErrBatchShape},
		{"over the chunk", []Segment{{Slot: 0, Tokens: []int{1, 2, 3, 4, 5}}}, ErrBatchShape},
		{"two prompt outputs", []Segment{{Slot: 0, Tokens: []int{1, 2}, Output: true}, {Slot: 1, Tokens: []int{1, 2}, Output: true}}, ErrBatchShape},
		{"token outside the vocabulary", []Segment{{Slot: 1, Tokens: []int{tinyConfig.VocabSize}}}, nil},
	} {
		err := b.Step(ctx, tc.segs, false)
		require.Error(t, err, tc.name)
		if tc.want != nil {
			assert.True(t, errors.Is(err, tc.want), "%s: %v", tc.name, err)
		}
		assert.Equal(t, 0, b.Pos(0), tc.name)
		assert.Equal(t, 0, b.Pos(1), tc.name)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, b.Step(cancelled, []Segment{{Slot: 0, Tokens: []int{1}}}, false), context.Canceled)
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	require.Error(t, b.Step(ctx, []Segment{{Slot: 0, Tokens: []int{1}}}, false))
}

// TestHasMatrixOf: AutoDot turns the integer-dot path off for a file with
// no Q4_0 or Q8_0 matrix (no norm then writes q8 rows that no product
// reads); a Q4_0 file keeps it.
func TestHasMatrixOf(t *testing.T) {
	assert.True(t, hasMatrixOf(openSynthetic(t, tinyConfig, loader.Q4_0), shaders.DotTypes))
	assert.True(t, hasMatrixOf(openSynthetic(t, tinyConfig, loader.Q8_0), shaders.DotTypes))
	assert.False(t, hasMatrixOf(openSynthetic(t, tinyConfig, loader.Q4_1), shaders.DotTypes))
	assert.False(t, hasMatrixOf(openSynthetic(t, tinyConfig, loader.F16), shaders.DotTypes))
}
