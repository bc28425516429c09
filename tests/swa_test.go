package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine"
	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/engine/ref"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// The SWA families: layers with their own windows. Each synthetic model has
// windows of 3 to 5, so that within a 40-token prompt every local layer
// wraps its ring many times while the global layers see every key.

// familyLayers is n layers by llama.cpp's period rule (layer l is local
// when l % period < period−1), local ones with window w and RoPE base
// local, global ones with base global scaled by scale (0: no RoPE).
func familyLayers(n, period, w int, local, global, scale float64) []loader.LayerSpec {
	out := make([]loader.LayerSpec, n)
	for l := range out {
		if l%period < period-1 {
			out[l] = loader.LayerSpec{Window: w, RopeTheta: local, RopeScale: 1}
		} else {
			out[l] = loader.LayerSpec{Window: 0, RopeTheta: global, RopeScale: scale}
		}
	}
	return out
}

// nmseFamilyKVF16 bounds these models' logits with an f16 cache against
// the reference, which does not round K and V: measured 8.8e-7 at worst
// on lavapipe (1.3e-12 with an f32 cache), above the llama models' 1.4e-7
// as Gemma's soft-caps and scaled embeddings make the logits steeper.
const nmseFamilyKVF16 = 5e-6

// families are the synthetic models of each arch, small enough for
// lavapipe: dim 64, a vocabulary of 96. The SWA families come first (the
// tests below pick them by index).
var families = []struct {
	name string
	cfg  loader.Config
}{
	{"gemma2", loader.Config{Arch: "gemma2", Dim: 64, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 96,
		VocabSize: 96, Window: 4, RopeTheta: 10000, Layers: familyLayers(4, 2, 4, 10000, 10000, 1)}},
	// Head dim 48 is not dim/heads; the global layer scales its RoPE by 8
	// with a base of 1e6, the local ones turn at 1e4.
	{"gemma3", loader.Config{Arch: "gemma3", Dim: 64, NumLayers: 6, NumHeads: 2, NumKVHeads: 1, HeadDim: 48, FFNDim: 96,
		VocabSize: 96, Window: 3, RopeTheta: 1e6, Layers: familyLayers(6, 6, 3, 10000, 1e6, 8)}},
	// The global layer has no RoPE.
	{"cohere2", loader.Config{Arch: "cohere2", Dim: 64, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 96,
		VocabSize: 96, Window: 5, RopeTheta: 10000, LogitScale: 0.25, Layers: familyLayers(4, 4, 5, 10000, 0, 1)}},
	// Qwen 2.5: Q/K/V biases, NEOX RoPE; Qwen 3: per-head q/k norms and a
	// head dim that is not dim/heads; Llama 3.1: RoPE frequency factors
	// (rope_freqs.weight). All global.
	{"qwen2", loader.Config{Arch: "qwen2", Dim: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 96,
		VocabSize: 96, RopeTheta: 1e6, QKVBias: true}},
	{"qwen3", loader.Config{Arch: "qwen3", Dim: 64, NumLayers: 2, NumHeads: 2, NumKVHeads: 1, HeadDim: 48, FFNDim: 96,
		VocabSize: 96, RopeTheta: 1e6, QKNorm: true}},
	{"llama3-rope", loader.Config{Arch: "llama", Dim: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 96,
		VocabSize: 96, RopeTheta: 5e5, RopeFreqFactors: []float64{1, 1, 1, 1.5, 2.5, 8, 8, 8}}},
	// A llama file with a per-layer pattern (Ministral's case): windows
	// 3, 5 and a global layer.
	{"llama-pattern", loader.Config{Arch: "llama", Dim: 64, NumLayers: 3, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 96,
		VocabSize: 96, Window: 3, RopeTheta: 10000,
		Layers: []loader.LayerSpec{{Window: 3, RopeTheta: 10000, RopeScale: 1}, {Window: 0, RopeTheta: 10000, RopeScale: 1}, {Window: 3, RopeTheta: 10000, RopeScale: 1}}}},
}

// writeFamily writes family cfg as a synthetic GGUF of type dt.
func writeFamily(t *testing.T, name string, cfg loader.Config, dt loader.DType) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%s.gguf", name, dt))
	require.NoError(t, loader.WriteSynthetic(path, cfg, dt, 1234, nil))
	return path
}

// The GPU matches engine/ref at every position of a 40-token prompt, for
// each family in F32 and in Q8_0, and chunked prefill (chunks bounded by
// the smallest window) equals token-by-token decode bit for bit.
func TestFamiliesMatchReference(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	// Both kernel layouts (lavapipe picks the CPU one; the GPU one is what
	// real GPUs run) with an f32 cache, and the GPU one with an f16 cache.
	layouts := []struct {
		name   string
		layout ops.LayoutChoice
		kv     ops.KVType
	}{{"auto/kv-f32", ops.AutoLayout, ops.KVF32}, {"gpu/kv-f32", ops.ForceGPU, ops.KVF32}, {"gpu/kv-f16", ops.ForceGPU, ops.KVF16}}
	for _, f := range families {
		for _, dt := range []loader.DType{loader.F32, loader.Q8_0} {
			for _, lay := range layouts {
				t.Run(f.name+"/"+dt.String()+"/"+lay.name, func(t *testing.T) {
					testFamilyMatchesReference(t, d, f.name, f.cfg, dt, engine.Options{KV: lay.kv, Layout: lay.layout})
				})
			}
		}
	}
}

// testFamilyMatchesReference runs family cfg, written in type dt, on the
// GPU and in engine/ref over a 40-token prompt.
func testFamilyMatchesReference(t *testing.T, d *vk.Device, name string, cfg loader.Config, dt loader.DType, opts engine.Options) {
	m, lm := loadGPU(t, d, writeFamily(t, name, cfg, dt), opts)
	for l, spec := range cfg.Layers {
		require.Equal(t, spec, m.Config.Layer(l), "layer %d as the file says", l)
	}
	rm, err := ref.Load(lm)
	require.NoError(t, err)
	rm.Sinks = opts.Keep
	if opts.Keep > 0 { // the engine's sinks sit at their cache positions (RATIONALE.md)
		rm.Positions = ref.CachePositions
	}
	tokens := randomTokens(41, 40, m.Config.VocabSize)
	want, err := rm.Forward(tokens)
	require.NoError(t, err)
	got, err := session(t, m).PrefillAll(context.Background(), tokens, 0)
	require.NoError(t, err)
	bound := nmseKVF32
	if opts.KV == ops.KVF16 {
		bound = nmseFamilyKVF16
	}
	worst := checkPositions(t, got, want, bound)
	t.Logf("%s layout, chunk %d, worst NMSE over %d positions: %.3g", m.Library().Layout(), m.Chunk(), len(tokens), worst)

	s := session(t, m)
	for p, tok := range tokens {
		one, err := s.Decode(context.Background(), tok)
		require.NoError(t, err)
		require.Equal(t, got[p], one, "decode at position %d differs from chunked prefill", p)
	}
}

// The receptive field, layer by layer: with only local layers of windows
// W_l, changing the token at position 0 changes the logits at Σ(W_l − 1)
// and leaves every later position bit for bit; with a global layer it
// changes every position.
func TestReceptiveFieldPerLayer(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	// GGUF gives every local layer one window; the engine takes any, so
	// this case sets them after Open.
	local := loader.Config{Arch: "llama", Dim: 64, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 96,
		VocabSize: 96, Window: 5, RopeTheta: 10000}
	var windows []loader.LayerSpec
	for _, w := range []int{3, 5, 4, 2} {
		windows = append(windows, loader.LayerSpec{Window: w, RopeTheta: 10000, RopeScale: 1})
	}
	cases := []struct {
		name   string
		cfg    loader.Config
		layers []loader.LayerSpec // set after Open, when not nil
		edge   int                // the last position position 0 reaches; −1: every one
	}{
		{"local-3-5-4-2", local, windows, 2 + 4 + 3 + 1},
		{"gemma2", families[0].cfg, nil, -1},
		{"cohere2", families[2].cfg, nil, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lm, err := loader.Open(writeFamily(t, tc.name, tc.cfg, loader.F32))
			require.NoError(t, err)
			t.Cleanup(func() { lm.Close() })
			if tc.layers != nil {
				lm.Config.Layers = tc.layers
				require.NoError(t, lm.Config.Validate())
			}
			m, err := engine.Load(d, lm, engine.Options{KV: ops.KVF32})
			require.NoError(t, err)
			t.Cleanup(func() { m.Close() })
			a := randomTokens(11, 30, m.Config.VocabSize)
			b := slices.Clone(a)
			b[0] = 3 + (a[0]-3+1)%(m.Config.VocabSize-3)
			la, err := session(t, m).PrefillAll(context.Background(), a, 0)
			require.NoError(t, err)
			lb, err := session(t, m).PrefillAll(context.Background(), b, 0)
			require.NoError(t, err)
			if tc.edge < 0 {
				for p := range a {
					require.NotEqual(t, la[p], lb[p], "position %d must see position 0 through the global layers", p)
				}
				return
			}
			assert.NotEqual(t, la[tc.edge], lb[tc.edge], "position Σ(W_l−1) = %d must still see position 0", tc.edge)
			for p := tc.edge + 1; p < len(a); p++ {
				require.Equal(t, la[p], lb[p], "position %d > Σ(W_l−1) = %d must not see position 0", p, tc.edge)
			}
		})
	}
}

// The KV cache is sized layer by layer: Σ_l slots_l · kvDim · 2 · elem, a
// ring of W for each local layer and the context for each global one, and
// its device memory stays constant from W to 20·W tokens.
func TestKVCachePerLayer(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	f := families[1] // gemma3: 5 local layers of W = 3, one global
	path := writeFamily(t, f.name, f.cfg, loader.Q8_0)
	const ctxLen = 64
	for _, kv := range []struct {
		t    ops.KVType
		size uint64
	}{{ops.KVF16, 2}, {ops.KVF32, 4}} {
		m, _ := loadGPU(t, d, path, engine.Options{KV: kv.t, Context: ctxLen})
		c := m.Config
		kvDim := uint64(c.NumKVHeads * c.HeadDim)
		var want uint64
		for l, lc := range m.Cache {
			w := f.cfg.Layers[l].Window
			if w > 0 {
				assert.Equal(t, engine.LayerCache{Window: w, Slots: w}, lc, "layer %d: a ring of its window", l)
			} else {
				assert.Equal(t, engine.LayerCache{Window: 0, Slots: ctxLen}, lc, "layer %d: a linear cache of the context", l)
			}
			want += uint64(lc.Slots) * kvDim * 2 * kv.size
		}
		assert.Equal(t, uint64((5*3+ctxLen)*2)*kvDim*kv.size, want)
		assert.Equal(t, ctxLen, m.Context)
		s := session(t, m)
		require.Equal(t, want, s.KVBytes())
		require.Equal(t, want, m.KVBytes())
		w := f.cfg.Window
		tokens := randomTokens(3, 20*w, c.VocabSize)
		_, err := s.Prefill(context.Background(), tokens[:w])
		require.NoError(t, err)
		dev1, host1 := d.AllocatedBytes()
		_, err = s.Prefill(context.Background(), tokens[w:])
		require.NoError(t, err)
		dev2, host2 := d.AllocatedBytes()
		assert.Equal(t, 20*w, s.Pos())
		assert.Equal(t, dev1, dev2, "device memory after W and after 20·W tokens")
		assert.Equal(t, host1, host2, "host-visible memory after W and after 20·W tokens")
		assert.Equal(t, want, s.KVBytes())

		// The global layers bound the sequence.
		_, err = s.Prefill(context.Background(), randomTokens(4, ctxLen-20*w+1, c.VocabSize))
		assert.ErrorIs(t, err, engine.ErrContextFull)
	}
}

// A window larger than the context is clamped, with a note; --window
// overrides every local layer and leaves the global ones alone.
func TestWindowClampAndOverride(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	f := families[0] // gemma2: W = 4, layers local, global, local, global
	path := writeFamily(t, f.name, f.cfg, loader.F32)

	m, _ := loadGPU(t, d, path, engine.Options{Context: 3})
	for l, lc := range m.Cache {
		want := engine.LayerCache{Window: 3, Slots: 3}
		if l%2 == 1 {
			want = engine.LayerCache{Window: 0, Slots: 3}
		}
		assert.Equal(t, want, lc, "layer %d", l)
	}
	assert.True(t, slices.ContainsFunc(m.Notes, func(n string) bool {
		return strings.Contains(n, "window 4") && strings.Contains(n, "context 3") && strings.Contains(n, "clamped")
	}), "a note says the window was clamped: %q", m.Notes)

	m, _ = loadGPU(t, d, path, engine.Options{Context: 32}, loader.WithWindow(7))
	for l, lc := range m.Cache {
		want := engine.LayerCache{Window: 7, Slots: 7}
		if l%2 == 1 {
			want = engine.LayerCache{Window: 0, Slots: 32}
		}
		assert.Equal(t, want, lc, "layer %d with --window 7", l)
	}
	assert.Equal(t, 7, m.Chunk(), "chunks are bounded by the smallest cache")
}

// A KV cache larger than the device's free memory is refused before
// anything is allocated, with its size and the way out.
func TestKVCacheTooBigIsRefused(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{MemoryLimit: 64 << 20})
	f := families[0] // gemma2: its global layers hold the context
	m, _ := loadGPU(t, d, writeFamily(t, f.name, f.cfg, loader.F32), engine.Options{Context: 1 << 20})
	assert.True(t, slices.ContainsFunc(m.Notes, func(n string) bool { return strings.Contains(n, "beyond the model's training context") }),
		"a note says the context is past the training context: %q", m.Notes)
	require.Greater(t, m.KVBytes(), uint64(64<<20))
	dev, host := d.AllocatedBytes()
	_, err := m.NewSession()
	require.ErrorIs(t, err, vk.ErrOutOfDeviceMemory)
	assert.ErrorContains(t, err, fmt.Sprintf("the KV cache needs %d bytes", m.KVBytes()))
	assert.ErrorContains(t, err, "lower the context")
	dev2, host2 := d.AllocatedBytes()
	assert.Equal(t, [2]uint64{dev, host}, [2]uint64{dev2, host2}, "nothing was allocated")
}
