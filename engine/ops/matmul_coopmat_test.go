package ops_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// coopmatTypes stand for every weight type in the cooperative-matrix test:
// the kernel reads W through w_elem alone, one function per type, so a
// plain type with a column tail (F32), the scaled blocks (Q4_0) and the
// K-quants with an offset (Q4_K) and without (Q6_K) cover its paths. Each
// costs lavapipe's JIT one to three pipelines.
var coopmatTypes = []loader.DType{loader.F32, loader.Q4_0, loader.Q4_K, loader.Q6_K}

// coopmatShapes are (rows, cols) per block size: rows past a 64-row tile,
// and for F32 columns past a 32-column step.
var coopmatShapes = map[int][2]int{1: {70, 100}, 32: {70, 96}, 256: {70, 512}}

// Bounds on the cooperative-matrix product's NMSE. Against the float64
// product of W and x rounded to f16 first (to nearest, or toward zero:
// Vulkan lets a device convert either way, and the test takes the closer),
// only the f32 accumulation differs: the emulated kernel adds the exact f16 products in order
// (measured on lavapipe at most 2.3e-13, and 6e-8 to 9e-8 against f32); a device's matrix units order and
// round their sums as their hardware does. Against the f32 product, W and
// x lose about 2⁻¹² each to the rounding.
const (
	nmseCoopMatEmu    = 1e-12
	nmseCoopMatDevice = 1e-9
	nmseCoopMatFull   = 1e-5
)

// coopmatVariants are the ways the cooperative-matrix tests run the
// kernels: emulated (any device with shaderFloat16), and on each extension
// the device offers; kernel is in the names of the kernels each runs.
var coopmatVariants = []struct {
	name   string
	choice ops.CoopMatChoice
	kernel string
	bound  float64
}{
	{"emulated", ops.EmulateCoopMat, "coopmat_emu", nmseCoopMatEmu},
	{"khr", ops.ForceCoopMatKHR, "/coopmat_khr_", nmseCoopMatDevice},
	{"nv", ops.ForceCoopMatNV, "/coopmat_nv_", nmseCoopMatDevice},
}

// TestMatMulCoopMat: the prefill tiles on cooperative matrices
// (shaders.MatMulCoopMat), emulated (any device with shaderFloat16:
// lavapipe, and so CI) and, where a device offers VK_KHR_cooperative_matrix
// or VK_NV_cooperative_matrix, on each (Mesa 26's lavapipe has the KHR one:
// scripts/mesa-next.sh). For each type: 16 tokens (one tile, partial) and 70
// (two) against float64 of f16-rounded W and x, and of the unrounded ones;
// a token's result the same whichever tile holds it (bit for bit); y += on
// a non-zero y; the GLU epilogue against act(gate)·up of the same
// reference; and MatMulRoPE, which these tiles serve unfused, against
// MatMul then RoPEQK. Every product checks that the kernel that ran is the
// cooperative-matrix one.
func TestMatMulCoopMat(t *testing.T) {
	start := time.Now()
	d := vktest.Device(t, vk.DeviceOptions{})
	for _, v := range coopmatVariants {
		t.Run(v.name, func(t *testing.T) {
			lib := coopmatLibrary(t, d, v.choice)
			if at, ok := lib.CoopMatConfig(); ok {
				t.Logf("%s: %v", d.Info.Name, at)
			}
			e := &env{d: d, lib: lib, wg: lib.WG, types: coopmatTypes}
			for _, typ := range coopmatTypes {
				t.Run(typ.String(), func(t *testing.T) { testMatMulCoopMat(t, e, typ, v.kernel, v.bound) })
			}
			for _, p := range lib.Picks() {
				if strings.HasPrefix(p.Op, "matmul") && strings.Contains(p.Op, "tiled") {
					require.True(t, strings.Contains(p.Kernel, v.kernel), "%s on %s ran %s, not a cooperative-matrix kernel", p.Op, p.Type, p.Kernel)
				}
			}
		})
	}
	t.Logf("%v", time.Since(start))
}

func testMatMulCoopMat(t *testing.T, e *env, typ loader.DType, kernel string, bound float64) {
	s := coopmatShapes[blockSize(typ)]
	rows, cols := s[0], s[1]
	const maxTok = 70
	gguf := randGGUF(typ, rows, cols, 61)
	w, deq := e.uploadGGUF(t, typ, gguf, rows, cols)
	x := optest.Rand(62, maxTok*cols)
	xb := ops.F32(e.upload(t, "x", x))
	y0 := optest.Rand(63, maxTok*rows)
	// f16 is the product of deq and x rounded to f16 both ways, and the
	// closer of the two to got.
	f16 := func(got, w, x, y0 []float32, rows, cols, ntok int) []float32 {
		near := optest.MatMul(optest.RoundF16(w), optest.RoundF16(x), y0, rows, cols, ntok)
		zero := optest.MatMul(roundF16RTZ(w), roundF16RTZ(x), y0, rows, cols, ntok)
		return closer(got, near, zero)
	}

	var first []float32 // the 16-token product
	for _, ntok := range []int{16, maxTok} {
		y := ops.F32(e.zeros(t, "y", ntok*rows))
		acc := ops.F32(e.upload(t, "y0", y0[:ntok*rows]))
		xs := xb.Sub(0, uint64(ntok*cols))
		e.run(t, func(p *ops.Plan) {
			p.MatMul(w, xs, y, ntok, false)
			p.MatMul(w, xs, acc, ntok, true)
		})
		got, sum := e.download(t, y.Buf), e.download(t, acc.Buf)
		check(t, fmt.Sprintf("ntok=%d against f16 W and x", ntok), got, f16(got, deq, x[:ntok*cols], nil, rows, cols, ntok), bound)
		check(t, fmt.Sprintf("ntok=%d against f32 W and x", ntok), got, optest.MatMul(deq, x[:ntok*cols], nil, rows, cols, ntok), nmseCoopMatFull)
		check(t, fmt.Sprintf("ntok=%d y += x·Wᵀ", ntok), sum, f16(sum, deq, x[:ntok*cols], y0[:ntok*rows], rows, cols, ntok), bound)
		if first == nil {
			first = got
		} else {
			requireBitEqual(t, "the first 16 tokens in a tile of their own and in a tile of 64", got[:len(first)], first, rows)
		}
	}
	requireKernel(t, e, "matmul_tiled", typ, kernel)

	if typ != loader.Q4_0 && typ != loader.Q4_K {
		return // the epilogues once per kind of block
	}
	t.Run("glu", func(t *testing.T) {
		ffn := rows / 2
		gateUp := randGGUF(typ, 2*ffn, cols, 64)
		_, guDeq := e.uploadGGUF(t, typ, gateUp, 2*ffn, cols)
		mixed := e.uploadGLU(t, typ, gateUp, ffn, cols)
		h := ops.F32(e.zeros(t, "h", maxTok*ffn))
		e.run(t, func(p *ops.Plan) { p.MatMulGLU(mixed, xb, h, maxTok, loader.ActSiLU) })
		got := e.download(t, h.Buf)
		near := gluRef(loader.ActSiLU, optest.MatMul(optest.RoundF16(guDeq), optest.RoundF16(x), nil, 2*ffn, cols, maxTok), maxTok, ffn)
		zero := gluRef(loader.ActSiLU, optest.MatMul(roundF16RTZ(guDeq), roundF16RTZ(x), nil, 2*ffn, cols, maxTok), maxTok, ffn)
		check(t, "SwiGLU against f16 W and x", got, closer(got, near, zero), bound)
		requireKernel(t, e, "matmul_swiglu_tiled", typ, kernel)
	})
	t.Run("rope", func(t *testing.T) {
		const heads, kvHeads, headDim, ropeDim = 3, 1, 14, 10 // 70 rows: q, k and v heads of 14
		ntok := maxTok
		pos := make([]int, ntok)
		for i := range pos {
			pos[i] = 3 * i
		}
		rope := ops.F32(e.upload(t, "rope", optest.RoPETable(pos, ropeDim, headDim, 10000)))
		fused, want := ops.F32(e.zeros(t, "qkv", ntok*rows)), ops.F32(e.zeros(t, "want", ntok*rows))
		e.run(t, func(p *ops.Plan) {
			p.MatMulRoPE(w, xb, fused, rope, ntok, heads, kvHeads, headDim, ropeDim, loader.RopePairwise)
			p.MatMul(w, xb, want, ntok, false)
			p.RoPEQK(want, rope, ntok, heads, kvHeads, headDim, ropeDim, loader.RopePairwise)
		})
		requireBitEqual(t, "MatMulRoPE against MatMul then RoPEQK", e.download(t, fused.Buf), e.download(t, want.Buf), rows)
	})
}

// closer is whichever of a and b is closer to got by NMSE.
func closer(got, a, b []float32) []float32 {
	if optest.NMSE(got, b) < optest.NMSE(got, a) {
		return b
	}
	return a
}

// roundF16RTZ is v rounded to f16 toward zero and back.
func roundF16RTZ(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = optest.FromF16(optest.ToF16RTZ(x))
	}
	return out
}

// coopmatLibrary is a GPU-layout library on d with cooperative-matrix
// choice c, closed at cleanup; the test skips, saying why, where d lacks
// what the choice needs.
func coopmatLibrary(t *testing.T, d *vk.Device, c ops.CoopMatChoice) *ops.Library {
	t.Helper()
	lib, err := ops.NewLibrary(d, ops.Options{Layout: ops.ForceGPU, CoopMat: c})
	if err != nil {
		if c == ops.ForceCoopMatKHR && !d.Features.CooperativeMatrixKHR {
			t.Skipf("%s lacks VK_KHR_cooperative_matrix (Debian bookworm's lavapipe, Mesa 22.3, has no cooperative matrices; scripts/mesa-next.sh runs these tests on Mesa 26's, which has): %v", d.Info.Name, err)
		}
		if c == ops.ForceCoopMatNV && !d.Features.CooperativeMatrixNV {
			t.Skipf("%s lacks VK_NV_cooperative_matrix (NVIDIA's drivers have it; no lavapipe does): %v", d.Info.Name, err)
		}
		if !d.Features.Float16 {
			t.Skipf("%s lacks shaderFloat16, which the cooperative-matrix kernels need: %v", d.Info.Name, err)
		}
		require.NoError(t, err)
	}
	t.Cleanup(lib.Close)
	return lib
}

// requireKernel checks that op on typ ran a kernel whose name holds
// variant.
func requireKernel(t *testing.T, e *env, op string, typ loader.DType, variant string) {
	t.Helper()
	for _, p := range e.lib.Picks() {
		if p.Op == op && p.Type == typ.String() {
			require.True(t, strings.Contains(p.Kernel, variant), "%s on %s ran %s (%s)", op, typ, p.Kernel, p.Reason)
			return
		}
	}
	t.Fatalf("no %s on %s ran", op, typ)
}
