// Package tests holds vkrun's end-to-end and cross-package tests: the GPU
// engine against llama2.c's published output and against the CPU reference.
package tests

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine"
	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/engine/ref"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// loadGPU opens path and loads it onto a validated device.
func loadGPU(t *testing.T, d *vk.Device, path string, opts engine.Options, lopts ...loader.Option) (*engine.Model, *loader.Model) {
	t.Helper()
	lm, err := loader.Open(path, lopts...)
	require.NoError(t, err)
	t.Cleanup(func() { lm.Close() })
	m, err := engine.Load(d, lm, opts)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m, lm
}

func session(t *testing.T, m *engine.Model) *engine.Session {
	t.Helper()
	s, err := m.NewSession()
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// Test 1: stories260K, greedy from BOS for 200 positions, reproduces
// llama2.c's published output byte for byte.
func TestStories260KGreedyMatchesLlama2c(t *testing.T) {
	want, err := os.ReadFile("testdata/stories260K-greedy-200.txt")
	require.NoError(t, err)
	path := testmodel.Stories260K(t)
	for _, tc := range []struct {
		name  string
		kv    ops.KVType
		lopts []loader.Option
	}{
		{"full-attention/kv-f16", ops.KVF16, nil},
		{"window-512/kv-f32", ops.KVF32, []loader.Option{loader.WithWindow(512)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := vktest.Device(t, vk.DeviceOptions{})
			m, lm := loadGPU(t, d, path, engine.Options{KV: tc.kv}, tc.lopts...)
			s := session(t, m)
			tok := lm.Tokenizer
			ids := []int{tok.BOS()}
			next := tok.BOS()
			for range 200 {
				next, err = s.DecodeGreedy(context.Background(), next)
				require.NoError(t, err)
				ids = append(ids, next)
			}
			got := tok.Decode(ids)
			require.Equal(t, string(want), got)
		})
	}
}

// coopmatRuns are the cooperative-matrix variants of the model tests:
// emulated (any device with shaderFloat16, so lavapipe and CI run the
// kernels; the f16 rounding is a device's), and on the device's own
// extension where it offers one (a GPU, or Mesa 26's lavapipe with
// VK_KHR_cooperative_matrix: scripts/mesa-next.sh).
var coopmatRuns = []struct {
	name   string
	choice ops.CoopMatChoice
}{{"emulated", ops.EmulateCoopMat}, {"device", ops.ForceCoopMat}}

// loadCoopMat loads path on d with cooperative-matrix choice c in the GPU
// layout, skipping (with the reason) where d offers no cooperative-matrix
// extension for ForceCoopMat. kernel is what the names of the kernels it
// runs on cooperative matrices hold.
func loadCoopMat(t *testing.T, d *vk.Device, path string, c ops.CoopMatChoice) (m *engine.Model, kernel string) {
	t.Helper()
	if c == ops.ForceCoopMat && !d.Features.CooperativeMatrixKHR && !d.Features.CooperativeMatrixNV {
		t.Skipf("%s offers no cooperative-matrix extension (Debian bookworm's lavapipe has none; scripts/mesa-next.sh runs this on Mesa 26's, which has VK_KHR_cooperative_matrix)", d.Info.Name)
	}
	m, _ = loadGPU(t, d, path, engine.Options{Layout: ops.ForceGPU, CoopMat: c})
	switch ext := m.Library().CoopMat(); ext {
	case "emulated":
		return m, "coopmat_emu"
	case "khr", "nv":
		at, _ := m.Library().CoopMatConfig()
		t.Logf("%s: %v", d.Info.Name, at)
		return m, "/coopmat_" + ext + "_"
	default:
		t.Fatalf("the library's cooperative matrices are %q", ext)
	}
	return nil, ""
}

// Test 1 with cooperative-matrix prefill: the first 100 ids of the greedy
// run go in as one prefill chunk, which the cooperative-matrix tiles serve
// with W and x rounded to f16, and greedy decoding from there still
// reproduces llama2.c's text byte for byte. The prefill's last logits
// differ from the exact path's by the rounding alone (measured on
// lavapipe: NMSE 1.0e-7 emulated).
func TestStories260KCoopMatPrefill(t *testing.T) {
	want, err := os.ReadFile("testdata/stories260K-greedy-200.txt")
	require.NoError(t, err)
	path := testmodel.Stories260K(t)
	d := vktest.Device(t, vk.DeviceOptions{})
	exact, lm := loadGPU(t, d, path, engine.Options{Layout: ops.ForceGPU})
	tok := lm.Tokenizer
	ids := []int{tok.BOS()}
	s := session(t, exact)
	for range 200 {
		next, err := s.DecodeGreedy(context.Background(), ids[len(ids)-1])
		require.NoError(t, err)
		ids = append(ids, next)
	}
	require.Equal(t, string(want), tok.Decode(ids))
	const n = 100
	wantLast, err := session(t, exact).Prefill(context.Background(), ids[:n])
	require.NoError(t, err)

	for _, r := range coopmatRuns {
		t.Run(r.name, func(t *testing.T) {
			coop, kernel := loadCoopMat(t, d, path, r.choice)
			c := session(t, coop)
			last, err := c.Prefill(context.Background(), ids[:n])
			require.NoError(t, err)
			e := optest.NMSE(last, wantLast)
			t.Logf("prefill's last logits, cooperative matrices against exact: NMSE %.3g", e)
			require.Less(t, e, 1e-4)
			require.NotEqual(t, wantLast, last, "the cooperative-matrix prefill gave the exact path's bits: did it run?")
			got := append([]int(nil), ids[:n]...)
			next := optest.Argmax(last)
			for len(got) < len(ids) {
				got = append(got, next)
				if len(got) == len(ids) {
					break
				}
				next, err = c.DecodeGreedy(context.Background(), next)
				require.NoError(t, err)
			}
			require.Equal(t, string(want), tok.Decode(got))
			ran := false
			for _, p := range coop.Library().Picks() {
				ran = ran || (strings.HasPrefix(p.Kernel, "matmul") && strings.Contains(p.Kernel, kernel))
			}
			require.True(t, ran, "no cooperative-matrix kernel ran")
		})
	}
}

// The cooperative-matrix prefill of two models whose attention the
// cooperative-matrix tiles take too: a Mistral-shaped one of head dim 64,
// and a Gemma 2 one (head dim 32, local and global layers, soft caps,
// post-norms and GELU's GLU epilogue on the tiles). Every position's
// logits stay near the exact path's (measured on lavapipe, emulated: at
// most 1.1e-6 and 2.9e-6), and both kernels ran.
func TestCoopMatPrefillLogits(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	gemma := loader.Config{Arch: "gemma2", Dim: 64, NumLayers: 4, NumHeads: 2, NumKVHeads: 1, HeadDim: 32, FFNDim: 96,
		VocabSize: 96, Window: 24, RopeTheta: 10000, Layers: familyLayers(4, 2, 24, 10000, 10000, 1)}
	gemmaPath := filepath.Join(t.TempDir(), "gemma2-hd32.gguf")
	require.NoError(t, loader.WriteSynthetic(gemmaPath, gemma, loader.Q4_0, 32024, nil))
	for _, m := range []struct{ name, path string }{
		{"mistral-hd64", synthetic(t, 64, 32, loader.Q4_0)},
		{"gemma2-hd32", gemmaPath},
	} {
		t.Run(m.name, func(t *testing.T) {
			exact, _ := loadGPU(t, d, m.path, engine.Options{Layout: ops.ForceGPU})
			tokens := randomTokens(11, 80, exact.Config.VocabSize)
			want, err := session(t, exact).PrefillAll(context.Background(), tokens, 32)
			require.NoError(t, err)
			for _, r := range coopmatRuns {
				t.Run(r.name, func(t *testing.T) {
					coop, kernel := loadCoopMat(t, d, m.path, r.choice)
					got, err := session(t, coop).PrefillAll(context.Background(), tokens, 32)
					require.NoError(t, err)
					t.Logf("cooperative-matrix prefill against exact: worst NMSE %.3g over %d positions", checkPositions(t, got, want, 1e-4), len(tokens))
					var product, attention bool
					for _, p := range coop.Library().Picks() {
						product = product || (strings.HasPrefix(p.Kernel, "matmul") && strings.Contains(p.Kernel, kernel))
						attention = attention || (strings.HasPrefix(p.Kernel, "swa_coopmat") && strings.Contains(p.Kernel, kernel))
					}
					require.True(t, product && attention, "cooperative-matrix kernels that ran (%s): product %v, attention %v", kernel, product, attention)
				})
			}
		})
	}
}

// synthetic writes a Mistral-shaped random model: GQA 4:1, the given head
// dim and window, two layers.
func synthetic(t *testing.T, headDim, window int, dt loader.DType) string {
	t.Helper()
	cfg := loader.Config{Arch: "llama", Dim: 4 * headDim, NumLayers: 2, NumHeads: 4, NumKVHeads: 1,
		HeadDim: headDim, FFNDim: 6 * headDim, VocabSize: 96, Window: window, RopeTheta: 10000, NormEps: 1e-5}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("synth-hd%d-w%d-%s.gguf", headDim, window, dt))
	require.NoError(t, loader.WriteSynthetic(path, cfg, dt, int64(headDim*1000+window), nil))
	return path
}

func randomTokens(seed uint64, n, vocab int) []int {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]int, n)
	for i := range out {
		out[i] = 3 + r.IntN(vocab-3)
	}
	return out
}

// Thresholds for GPU logits against the CPU reference, per position. The
// reference dequantises the same weights, so with an f32 ring only the
// summation order differs (measured on lavapipe: worst 4e-13 over all cases).
// An f16 ring rounds every cached key and value, which the reference does not
// (measured: worst 1.4e-7).
//
// The integer-dot products round every matmul's x to 8 bits a 32-column
// block, which the reference does not (measured on lavapipe: worst 3.9e-4,
// over the Q4_0 and Q8_0 models; one matmul alone is near 2.6e-5).
const (
	nmseKVF32  = 1e-6
	nmseKVF16  = 1e-6
	nmseIntDot = 1e-3
)

// checkPositions fails the test at the first position whose logits are
// further than bound (NMSE) from want's, and returns the worst NMSE of the
// positions it checked.
func checkPositions(t *testing.T, got, want [][]float32, bound float64) float64 {
	t.Helper()
	require.Len(t, got, len(want))
	worst := 0.0
	for p := range want {
		e := optest.NMSE(got[p], want[p])
		worst = max(worst, e)
		if e > bound {
			optest.Check(t, fmt.Sprintf("position %d", p), got[p], want[p], bound)
			break
		}
	}
	return worst
}

// Tests 2 and 5: GPU logits equal the CPU reference's at every position of
// sequences 10×W long (20×W for small windows, so the ring wraps many times).
func TestLogitsMatchReference(t *testing.T) {
	type tc struct {
		hd, w int
		dt    loader.DType
		kv    ops.KVType
	}
	var cases []tc
	for _, w := range []int{1, 3, 4, 16} {
		for _, hd := range []int{64, 128} {
			cases = append(cases, tc{hd, w, loader.F32, ops.KVF32})
		}
	}
	for _, dt := range []loader.DType{loader.F16, loader.Q8_0, loader.Q4_0} {
		cases = append(cases, tc{64, 4, dt, ops.KVF32}, tc{128, 16, dt, ops.KVF16})
	}
	d := vktest.Device(t, vk.DeviceOptions{})
	for _, c := range cases {
		kvName := map[ops.KVType]string{ops.KVF16: "f16", ops.KVF32: "f32"}[c.kv]
		t.Run(fmt.Sprintf("%s/hd%d/W%d/kv-%s", c.dt, c.hd, c.w, kvName), func(t *testing.T) {
			path := synthetic(t, c.hd, c.w, c.dt)
			m, lm := loadGPU(t, d, path, engine.Options{KV: c.kv})
			rm, err := ref.Load(lm)
			require.NoError(t, err)
			n := max(10*c.w, 20*c.w, 40)
			if testing.Short() {
				n = max(10*c.w, 12)
			}
			tokens := randomTokens(uint64(c.hd+c.w), n, m.Config.VocabSize)
			want, err := rm.Forward(tokens)
			require.NoError(t, err)
			got, err := session(t, m).PrefillAll(context.Background(), tokens, 0)
			require.NoError(t, err)
			require.Len(t, got, n)
			bound := nmseKVF32
			if c.kv == ops.KVF16 {
				bound = nmseKVF16
			}
			t.Logf("worst NMSE over %d positions: %.3g", n, checkPositions(t, got, want, bound))
		})
	}
}

// Test 3: chunked prefill with any chunk size gives the same logits as
// token-by-token decode, bit for bit.
func TestChunkedPrefillEqualsTokenByToken(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	for _, kv := range []ops.KVType{ops.KVF32, ops.KVF16} {
		const w = 8
		path := synthetic(t, 64, w, loader.F16)
		m, _ := loadGPU(t, d, path, engine.Options{KV: kv})
		tokens := randomTokens(7, 10*w+3, m.Config.VocabSize)
		base, err := session(t, m).PrefillAll(context.Background(), tokens, 1)
		require.NoError(t, err)
		// Decode one token at a time too, through the last-logits path.
		s := session(t, m)
		for i, tok := range tokens {
			got, err := s.Decode(context.Background(), tok)
			require.NoError(t, err)
			require.Equal(t, base[i], got, "kv %v: Decode at position %d", kv, i)
		}
		for _, chunk := range []int{2, w - 1, w, 5} {
			got, err := session(t, m).PrefillAll(context.Background(), tokens, chunk)
			require.NoError(t, err)
			for p := range tokens {
				if !assert.Equal(t, base[p], got[p], "kv %v chunk %d: position %d differs", kv, chunk, p) {
					break
				}
			}
		}
		// Prefill returns the same last logits as the chunk-of-one path.
		last, err := session(t, m).Prefill(context.Background(), tokens)
		require.NoError(t, err)
		require.Equal(t, base[len(tokens)-1], last)
	}
}

// Test 4: the receptive field. With L layers and window W, changing the token
// at position 0 leaves every position p > L·(W−1) bit-for-bit unchanged, and
// changes position L·(W−1).
func TestReceptiveField(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	for _, w := range []int{2, 3, 5} {
		t.Run(fmt.Sprintf("W%d", w), func(t *testing.T) {
			path := synthetic(t, 64, w, loader.F32)
			m, _ := loadGPU(t, d, path, engine.Options{KV: ops.KVF32})
			L := m.Config.NumLayers
			edge := L * (w - 1)
			a := randomTokens(11, edge+3*w+2, m.Config.VocabSize)
			b := append([]int(nil), a...)
			b[0] = 3 + (a[0]-3+1)%(m.Config.VocabSize-3)
			la, err := session(t, m).PrefillAll(context.Background(), a, 0)
			require.NoError(t, err)
			lb, err := session(t, m).PrefillAll(context.Background(), b, 0)
			require.NoError(t, err)
			assert.NotEqual(t, la[edge], lb[edge], "position L·(W−1) = %d must still see position 0", edge)
			for p := edge + 1; p < len(a); p++ {
				require.Equal(t, la[p], lb[p], "position %d > L·(W−1) = %d must not see position 0", p, edge)
			}
		})
	}
}

// Test 6: device memory stays constant, and the ring holds exactly
// 2·layers·W·kvHeads·headDim elements.
func TestDeviceMemoryIsFlat(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	const w = 16
	path := synthetic(t, 64, w, loader.Q8_0)
	for _, kv := range []struct {
		t    ops.KVType
		size uint64
	}{{ops.KVF16, 2}, {ops.KVF32, 4}} {
		m, _ := loadGPU(t, d, path, engine.Options{KV: kv.t})
		s := session(t, m)
		c := m.Config
		assert.Equal(t, 2*uint64(c.NumLayers*w*c.NumKVHeads*c.HeadDim)*kv.size, s.KVBytes())
		tokens := randomTokens(3, 20*w, c.VocabSize)
		_, err := s.Prefill(context.Background(), tokens[:w])
		require.NoError(t, err)
		dev1, host1 := d.AllocatedBytes()
		_, err = s.Prefill(context.Background(), tokens[w:])
		require.NoError(t, err)
		next := tokens[0]
		for range w {
			next, err = s.DecodeGreedy(context.Background(), next)
			require.NoError(t, err)
		}
		dev2, host2 := d.AllocatedBytes()
		assert.Equal(t, 21*w, s.Pos())
		assert.Equal(t, dev1, dev2, "device memory after W and after 21·W tokens")
		assert.Equal(t, host1, host2, "host-visible memory after W and after 21·W tokens")
	}
}

// Test 7: decoding is deterministic: the same seed and prompt give the same tokens.
func TestSamplingIsDeterministic(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	path := testmodel.Stories260K(t)
	m, lm := loadGPU(t, d, path, engine.Options{})
	prompt := lm.Tokenizer.Encode("Once upon a time")
	gen := func(seed uint64) []int {
		s := session(t, m)
		smp, err := engine.NewSampler(engine.Sampling{Temperature: 0.9, TopK: 40, TopP: 0.95, MinP: 0.02, Seed: seed})
		require.NoError(t, err)
		logits, err := s.Prefill(context.Background(), prompt)
		require.NoError(t, err)
		var out []int
		for range 40 {
			next := smp.Sample(logits)
			out = append(out, next)
			logits, err = s.Decode(context.Background(), next)
			require.NoError(t, err)
		}
		return out
	}
	a, b := gen(42), gen(42)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, gen(43), "another seed should give another story")
}

// Bad input and cancellation.
func TestEngineErrorsAndCancellation(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	path := synthetic(t, 64, 0, loader.F32) // no window: full attention in a ring of Context
	m, _ := loadGPU(t, d, path, engine.Options{Context: 32})
	s := session(t, m)
	ctx := context.Background()

	_, err := s.Prefill(ctx, randomTokens(1, 33, m.Config.VocabSize))
	assert.ErrorIs(t, err, engine.ErrContextFull, "a prompt longer than the context of a model without a window")
	s.Reset()
	_, err = s.Decode(ctx, m.Config.VocabSize)
	assert.ErrorContains(t, err, "outside the vocabulary")
	_, err = s.Prefill(ctx, nil)
	assert.Error(t, err)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Prefill(cctx, randomTokens(2, 10, m.Config.VocabSize))
	assert.True(t, errors.Is(err, context.Canceled))
	assert.Equal(t, 0, s.Pos(), "a cancelled step leaves the session where it was")
	_, err = s.Prefill(ctx, randomTokens(2, 10, m.Config.VocabSize))
	require.NoError(t, err, "the session stays usable")
	assert.Equal(t, 10, s.Pos())

	_, err = engine.NewSampler(engine.Sampling{Temperature: -1})
	assert.Error(t, err)
	_, err = engine.NewSampler(engine.Sampling{TopP: 2})
	assert.Error(t, err)
}

// Loading a model that does not fit reports ErrOutOfDeviceMemory with the numbers.
func TestLoadOutOfDeviceMemory(t *testing.T) {
	in := vktest.Instance(t)
	d := vktest.DeviceOn(t, in, vk.DeviceOptions{MemoryLimit: 256 << 10})
	path := synthetic(t, 64, 4, loader.F32)
	lm, err := loader.Open(path)
	require.NoError(t, err)
	defer lm.Close()
	_, err = engine.Load(d, lm, engine.Options{})
	require.Error(t, err)
	assert.True(t, errors.Is(err, vk.ErrOutOfDeviceMemory), "got %v", err)
	assert.Contains(t, err.Error(), "needed")
	assert.Contains(t, err.Error(), "free")
	assert.Contains(t, err.Error(), d.Info.Name)
}

// quantSynthetic writes a model whose every row is a multiple of 256 (dim
// 256, FFN 512: the K-quants' block), with its matrices in dt or, when mix
// is set, in the types llama.cpp's mix gives them (Q4_K_M: Q4_K, with Q6_K
// for output, and for attn_v and ffn_down in layer 1 of 2).
func quantSynthetic(t *testing.T, dt loader.DType, mix loader.QuantMix, window int) string {
	t.Helper()
	cfg := loader.Config{Arch: "llama", Dim: 256, NumLayers: 2, NumHeads: 4, NumKVHeads: 1,
		HeadDim: 64, FFNDim: 512, VocabSize: 96, Window: window, RopeTheta: 10000, NormEps: 1e-5}
	name := dt.String()
	if mix != "" {
		name = string(mix)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("synth-quant-%s.gguf", name))
	if mix != "" {
		require.NoError(t, loader.WriteSyntheticMix(path, cfg, mix, 17, nil))
	} else {
		require.NoError(t, loader.WriteSynthetic(path, cfg, dt, 17, nil))
	}
	return path
}

// TestQuantModels runs a synthetic Mistral-shaped model in every weight
// type with kernels, and in llama.cpp's Q4_K_M and Q3_K_M mixes, and
// requires of each:
//   - the types stay as they are on the device: the weights take at most
//     1.05 × the file's tensor bytes, and nothing is converted (no note);
//   - logits match engine/ref at every position (the reference dequantises
//     the same blocks, so only f32 summation differs);
//   - chunked prefill equals token-by-token decode bit for bit;
//   - every matmul and embedding ran the kernel the table names for its
//     type, and every type in the file was picked.
func TestQuantModels(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	type tc struct {
		dt     loader.DType
		mix    loader.QuantMix
		layout ops.LayoutChoice
		dot    ops.DotChoice // ops.ForceDot or ops.AllDot: x rounded to q8 blocks in (some of) the Q4_0 and Q8_0 products
	}
	var cases []tc
	for _, dt := range shaders.WeightTypes {
		cases = append(cases, tc{dt: dt})
	}
	// The mixes in the device's own layout, and Q4_K_M in the GPU layout too
	// (on lavapipe the op tests cover every type's GPU kernels; this is the
	// whole forward pass on them).
	cases = append(cases, tc{mix: "Q4_K_M"}, tc{mix: "Q3_K_M"}, tc{mix: "Q4_K_M", layout: ops.ForceGPU})
	// The integer-dot products of Q4_0 and Q8_0, where the device has them.
	if d.Features.IntegerDotProduct {
		cases = append(cases, tc{dt: loader.Q4_0, layout: ops.ForceGPU, dot: ops.ForceDot}, tc{dt: loader.Q8_0, layout: ops.ForceGPU, dot: ops.ForceDot},
			tc{dt: loader.Q4_0, layout: ops.ForceGPU, dot: ops.AllDot})
	} else {
		t.Logf("%s has no shaderIntegerDotProduct: the integer-dot cases do not run", d.Info.Name)
	}
	const w = 8
	for _, c := range cases {
		name := c.dt.String()
		if c.mix != "" {
			name = string(c.mix)
		}
		if c.layout == ops.ForceGPU {
			name += "/gpu-layout"
		}
		dot, maxNMSE := ops.NoDot, nmseKVF32
		switch c.dot {
		case ops.ForceDot:
			name += "/int-dot"
			dot, maxNMSE = c.dot, nmseIntDot
		case ops.AllDot:
			name += "/int-dot-all"
			dot, maxNMSE = c.dot, nmseIntDot
		}
		t.Run(name, func(t *testing.T) {
			path := quantSynthetic(t, c.dt, c.mix, w)
			m, lm := loadGPU(t, d, path, engine.Options{KV: ops.KVF32, Layout: c.layout, Dot: dot})
			on, all := m.Library().IntegerDot()
			require.Equal(t, dot != ops.NoDot, on)
			require.Equal(t, dot == ops.AllDot, all)
			var dotPicks int
			assert.Empty(t, m.Notes, "no tensor is converted")
			var fileBytes uint64
			fileTypes := map[string]bool{}
			for _, tn := range lm.Tensors {
				fileBytes += tn.Size()
				if len(tn.Shape) == 2 {
					fileTypes[tn.Type.String()] = true
				}
			}
			assert.LessOrEqual(t, float64(m.WeightBytes), 1.05*float64(fileBytes), "device weight bytes against the file's tensor bytes")
			if c.mix == "Q4_K_M" {
				assert.Equal(t, map[string]bool{"Q4_K": true, "Q6_K": true}, fileTypes, "llama.cpp's Q4_K_M mix")
			}

			rm, err := ref.Load(lm)
			require.NoError(t, err)
			tokens := randomTokens(uint64(len(name)), 3*w+5, m.Config.VocabSize)
			want, err := rm.Forward(tokens)
			require.NoError(t, err)
			base, err := session(t, m).PrefillAll(context.Background(), tokens, 0)
			require.NoError(t, err)
			worst := 0.0
			for p := range tokens {
				worst = max(worst, optest.NMSE(base[p], want[p]))
			}
			t.Logf("worst NMSE against engine/ref over %d positions: %.3g", len(tokens), worst)
			assert.LessOrEqual(t, worst, maxNMSE)

			s := session(t, m)
			for i, tok := range tokens {
				got, err := s.Decode(context.Background(), tok)
				require.NoError(t, err)
				require.Equal(t, base[i], got, "decode at position %d against chunked prefill", i)
			}
			chunked, err := session(t, m).PrefillAll(context.Background(), tokens, 3)
			require.NoError(t, err)
			require.Equal(t, base, chunked, "chunks of 3 against chunks of W")

			picked := map[string]bool{}
			for _, p := range m.Library().Picks() {
				if p.Op == "attention" {
					continue
				}
				picked[p.Type] = true
				op, ok := shaders.ParseOp(p.Op)
				require.True(t, ok, "pick of an unknown op %q", p.Op)
				var dt loader.DType
				for _, x := range shaders.WeightTypes {
					if x.String() == p.Type {
						dt = x
					}
				}
				k, ok := shaders.WeightKernel(op, dt, m.Library().Layout())
				require.True(t, ok, "%s: %s has no kernel in the table", p.Op, p.Type)
				assert.Equal(t, k.Name, p.Table, "%s on %s", p.Op, p.Type)
				// The table's kernel as it is, or its shuffle variant (the same
				// bits) where the device offers subgroup shuffles.
				// With AllDot the integer-dot variant of every product; with
				// ForceDot of those of a norm's output (q|k|v, gate|up), the
				// shuffle variant of the others (Wo, down).
				sh, shuffled := shaders.MatMulShuffled(k)
				dk, hasDot := shaders.MatMulDot(k)
				switch {
				case hasDot && dot == ops.AllDot:
					k = dk
				case hasDot && dot == ops.ForceDot && p.Kernel == dk.Name:
					k = dk
				case shuffled && m.Library().Shuffles():
					k = sh
				}
				if k.Dot {
					dotPicks++
				}
				assert.Equal(t, k.Name, p.Kernel, "%s on %s ran another kernel than the table's (%s)", p.Op, p.Type, p.Reason)
			}
			assert.Equal(t, fileTypes, picked, "every matrix type of the file was picked, and no other")
			if dot != ops.NoDot {
				assert.NotZero(t, dotPicks, "integer-dot kernels ran")
				// ForceDot rounds no x in a dispatch of its own: a decode step
				// has as many dispatches as without integer dots.
				plain, _ := loadGPU(t, d, path, engine.Options{KV: ops.KVF32, Layout: c.layout, Dot: ops.NoDot})
				st, err := session(t, m).DecodeStats()
				require.NoError(t, err)
				pst, err := session(t, plain).DecodeStats()
				require.NoError(t, err)
				if dot == ops.ForceDot {
					assert.Equal(t, pst.Dispatches, st.Dispatches, "dispatches of a decode step, with integer dots and without")
				} else {
					assert.Greater(t, st.Dispatches, pst.Dispatches, "AllDot rounds the attention output and the FFN's hidden vector in dispatches of their own")
				}
			}
		})
	}
}
