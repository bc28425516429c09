package ops_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// TestMatMulRoPE: the product of stacked Q, K and V rows with the q and k
// heads' RoPE in its epilogue, in one dispatch where the device shuffles,
// against MatMul then RoPEQK, bit for bit: one token, a batch and a
// prefill tile, all of a head's dims or some (partial rotary), several
// types and the integer-dot variant; and on the baseline device, which
// has no shuffles, the same bits from MatMul then RoPEQK. NEOX pairs
// (x[i], x[i+d/2]) never fuse.
func TestMatMulRoPE(t *testing.T) {
	full := newEnvOn(t, vktest.Device(t, vk.DeviceOptions{}), ops.Options{Layout: ops.ForceGPU})
	if !full.lib.Shuffles() {
		t.Skipf("%s offers no subgroup shuffles with full subgroups: MatMulRoPE runs as MatMul then RoPEQK there", full.d.Info.Name)
	}
	base := newEnvOn(t, vktest.Device(t, vk.DeviceOptions{NoOptionalFeatures: true}), ops.Options{WG: 64, Layout: ops.ForceGPU})
	envs := []*env{full, base}
	if full.d.Features.IntegerDotProduct {
		dot, err := ops.NewLibrary(full.d, ops.Options{Layout: ops.ForceGPU, Dot: ops.AllDot})
		require.NoError(t, err)
		t.Cleanup(dot.Close)
		envs = append(envs, &env{d: full.d, lib: dot})
	}
	const nHeads, nKV, headDim, cols = 4, 2, 32, 64
	rows := (nHeads + 2*nKV) * headDim
	// Each env compiles its own pipelines, and every new one costs
	// lavapipe seconds (a prefill tile tens): the cases share them out.
	for _, c := range []struct {
		typ     loader.DType
		ropeDim int
		style   loader.RopeStyle
		runs    map[int][]int // env index (full, base, integer-dot) → token counts
	}{
		{loader.Q4_0, headDim, loader.RopePairwise, map[int][]int{0: {1, 17}, 1: {1}}},
		{loader.Q4_K, 16, loader.RopePairwise, map[int][]int{0: {8}}}, // 256 columns a K-quant block
		{loader.F16, 16, loader.RopePairwise, map[int][]int{0: {1}}},
		{loader.Q8_0, headDim, loader.RopePairwise, map[int][]int{2: {1, 9}}},
		{loader.Q4_0, headDim, loader.RopeHalf, map[int][]int{0: {1}}},
	} {
		kcols := cols
		if c.typ == loader.Q4_K {
			kcols = 256
		}
		t.Run(fmt.Sprintf("%s/rope%d/%v", c.typ, c.ropeDim, c.style), func(t *testing.T) {
			gguf := randGGUF(c.typ, rows, kcols, 30)
			const maxTok = 17
			x := optest.Rand(31, maxTok*kcols)
			pos := make([]int, maxTok)
			for i := range pos {
				pos[i] = 1000 + 37*i
			}
			table := optest.RoPETable(pos, c.ropeDim, headDim, 10000)
			var outs [3][]float32
			for i, e := range envs {
				ntoks := c.runs[i]
				if len(ntoks) == 0 {
					continue
				}
				w, _ := e.uploadGGUF(t, c.typ, gguf, rows, kcols)
				xb, rb := ops.F32(e.upload(t, "x", x)), ops.F32(e.upload(t, "rope", table))
				for _, ntok := range ntoks {
					fused, plain := ops.F32(e.zeros(t, "fused", ntok*rows)), ops.F32(e.zeros(t, "plain", ntok*rows))
					xs, rs := xb.Sub(0, uint64(ntok*kcols)), rb.Sub(0, uint64(ntok*c.ropeDim))
					p := e.plan(t)
					p.MatMulRoPE(w, xs, fused, rs, ntok, nHeads, nKV, headDim, c.ropeDim, c.style)
					require.NoError(t, p.Err())
					wantN := 2 // MatMul, then RoPEQK
					if e.lib.Shuffles() && c.style == loader.RopePairwise {
						wantN = 1
					}
					if i == 2 {
						wantN++ // AllDot rounds x first
					}
					require.Equal(t, wantN, p.Seq.Dispatches(), "dispatches of MatMulRoPE")
					e.run(t, func(p *ops.Plan) {
						p.MatMulRoPE(w, xs, fused, rs, ntok, nHeads, nKV, headDim, c.ropeDim, c.style)
						p.MatMul(w, xs, plain, ntok, false)
						p.RoPEQK(plain, rs, ntok, nHeads, nKV, headDim, c.ropeDim, c.style)
					})
					g := e.download(t, fused.Buf)
					requireBitEqual(t, fmt.Sprintf("env %d ntok=%d: fused against MatMul then RoPEQK", i, ntok), g, e.download(t, plain.Buf), rows)
					outs[i] = append(outs[i], g...)
				}
			}
			if outs[1] != nil { // the baseline's first token count against the full device's
				requireBitEqual(t, "the baseline's MatMul then RoPEQK against the fused product", outs[1], outs[0][:len(outs[1])], rows)
			}
		})
	}
	for _, c := range []struct {
		lib  *ops.Library
		op   string
		typ  loader.DType
		want string
	}{
		{full.lib, "matmul_rope1", loader.Q4_0, "matmul_rope_q4_0_1tok"},
		{full.lib, "matmul_rope_tiled", loader.Q4_0, "matmul_rope_q4_0_tiled"},
		{full.lib, "matmul_rope", loader.Q4_K, "matmul_rope_q4_k"},
		{envs[len(envs)-1].lib, "matmul_rope1", loader.Q8_0, "matmul_rope_q8_0_1tok/dot"},
	} {
		if c.lib == full.lib || len(envs) == 3 {
			require.Equal(t, []string{c.want}, kernelsRun(c.lib, c.op, c.typ), "%s %s", c.op, c.typ)
		}
	}
	require.Empty(t, kernelsRun(base.lib, "matmul_rope1", loader.Q4_0), "the baseline has no shuffles: no fused kernel")

	bad := base.plan(t)
	w, _ := base.uploadRand(t, loader.Q4_0, rows, cols, 3)
	buf := ops.F32(base.zeros(t, "b", 4096))
	bad.MatMulRoPE(w, buf.Sub(0, cols), buf.Sub(cols, uint64(rows)), buf.Sub(0, headDim), 1, nHeads+1, nKV, headDim, headDim, loader.RopePairwise)
	require.ErrorContains(t, bad.Err(), "shape mismatch")
}
