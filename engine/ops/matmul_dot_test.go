package ops_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// NMSE thresholds of the integer-dot matmul: against a float64 product with
// x rounded as optest.QuantizeQ8 rounds it (only the f32 scaling of each
// block's exact integer sum and the f32 sum of the blocks differ; lavapipe
// measures at most 1e-14, and a device whose divisions are 2.5 ulp off may
// round a value near a half the other way), and against the f32 x (the
// 8-bit rounding of x itself; measured at most 2e-5 on these inputs).
const (
	nmseDotQ8  = 1e-9
	nmseDotF32 = 1e-3
)

// dotEnv is an env whose library takes the integer-dot kernels for every
// product (AllDot), or a skip naming what the device lacks.
func dotEnv(t *testing.T) *env {
	d := vktest.Device(t, vk.DeviceOptions{})
	if !d.Features.IntegerDotProduct {
		t.Skipf("%s has no shaderIntegerDotProduct: the integer-dot matmul cannot run there", d.Info.Name)
	}
	lib, err := ops.NewLibrary(d, ops.Options{Layout: ops.ForceGPU, Dot: ops.AllDot})
	if err != nil {
		t.Skipf("the integer-dot matmul needs subgroup shuffles too: %v", err)
	}
	t.Cleanup(lib.Close)
	on, all := lib.IntegerDot()
	require.True(t, on && all)
	return &env{d: d, lib: lib, types: shaders.DotTypes}
}

// TestMatMulDot: the integer-dot matmul of Q8_0 and Q4_0 (x rounded to q8
// blocks, each block's products summed exactly in int32) against float64
// references of x rounded and of x itself, with the residual add; every
// batch of tokens against one token at a time, bit for bit (decode equals
// chunked prefill); and a NaN in x giving NaN in its token's outputs alone.
// One token (matmul1), 8 (matmul) and 17 (the prefill tile), on shapes of
// 1, 3 and 129 blocks a row (part of a 256-column step, and more chunks
// than a row's lanes).
func TestMatMulDot(t *testing.T) {
	e := dotEnv(t)
	const maxTok = 17
	for _, typ := range e.types {
		for i, s := range [][2]int{{5, 32}, {33, 96}, {37, 4128}} {
			rows, cols := s[0], s[1]
			w, deq := e.uploadRand(t, typ, rows, cols, uint64(60+i))
			x := optest.Rand(uint64(70+i), maxTok*cols)
			for k := range x {
				x[k] *= float32(1 + k%7*100) // a wide range within each block
			}
			_, xq := optest.QuantizeQ8(x)
			xb := ops.F32(e.upload(t, "x", x))
			t.Run(fmt.Sprintf("%s/%dx%d", typ, rows, cols), func(t *testing.T) {
				single := ops.F32(e.zeros(t, "single", maxTok*rows))
				e.run(t, func(p *ops.Plan) {
					for k := range maxTok {
						p.MatMul(w, xb.Sub(uint64(k*cols), uint64(cols)), single.Sub(uint64(k*rows), uint64(rows)), 1, false)
					}
				})
				alone := e.download(t, single.Buf)
				check(t, "one token at a time against x rounded", alone, optest.MatMul(deq, xq, nil, rows, cols, maxTok), nmseDotQ8)
				check(t, "one token at a time against f32 x", alone, optest.MatMul(deq, x, nil, rows, cols, maxTok), nmseDotF32)
				for _, ntok := range []int{8, 17} {
					for _, start := range []int{0, maxTok - ntok} {
						y := ops.F32(e.zeros(t, "y", ntok*rows))
						e.run(t, func(p *ops.Plan) { p.MatMul(w, xb.Sub(uint64(start*cols), uint64(ntok*cols)), y, ntok, false) })
						requireBitEqual(t, fmt.Sprintf("ntok=%d from token %d against one token at a time", ntok, start),
							e.download(t, y.Buf), alone[start*rows:(start+ntok)*rows], rows)
					}
				}
				// y += x·Wᵀ: the sum rounded, then the residual added.
				y0 := optest.Rand(80, maxTok*rows)
				ya := ops.F32(e.upload(t, "y", y0))
				e.run(t, func(p *ops.Plan) { p.MatMul(w, xb, ya, maxTok, true) })
				want := make([]float32, len(y0))
				for k := range want {
					want[k] = alone[k] + y0[k]
				}
				requireBitEqual(t, "accumulate", e.download(t, ya.Buf), want, rows)
			})
		}
		ks := kernelsRun(e.lib, "matmul1", typ)
		require.NotEmpty(t, ks)
		for _, k := range append(ks, kernelsRun(e.lib, "matmul_tiled", typ)...) {
			require.True(t, strings.HasSuffix(k, "/dot"), "%s: %s", typ, k)
		}
	}

	// The order is the lanes' alone: other workgroup widths give the same
	// bits, for decode and for the prefill tile.
	t.Run("widths", func(t *testing.T) {
		const rows, cols = 37, 4128
		gguf := randGGUF(loader.Q4_0, rows, cols, 95)
		x := optest.Rand(96, maxTok*cols)
		var want []float32
		for _, wg := range []uint32{128, 64, 256} {
			we := e
			if wg != 128 {
				lib, err := ops.NewLibrary(e.d, ops.Options{WG: wg, Layout: ops.ForceGPU, Dot: ops.AllDot})
				require.NoError(t, err)
				defer lib.Close()
				we = &env{d: e.d, lib: lib}
			}
			w, _ := we.uploadGGUF(t, loader.Q4_0, gguf, rows, cols)
			xb := ops.F32(we.upload(t, "x", x))
			var got []float32
			for _, ntok := range []int{1, maxTok} {
				y := ops.F32(we.zeros(t, "y", ntok*rows))
				we.run(t, func(p *ops.Plan) { p.MatMul(w, xb.Sub(0, uint64(ntok*cols)), y, ntok, false) })
				got = append(got, we.download(t, y.Buf)...)
			}
			if want == nil {
				want = got
				continue
			}
			requireBitEqual(t, fmt.Sprintf("workgroup %d against 128", wg), got, want, rows)
		}
	})

	t.Run("NaN", func(t *testing.T) {
		const rows, cols, ntok = 9, 64, 3
		w, deq := e.uploadRand(t, loader.Q4_0, rows, cols, 90)
		x := optest.Rand(91, ntok*cols)
		x[cols+40] = float32(math.NaN()) // token 1, its second block
		y := ops.F32(e.zeros(t, "y", ntok*rows))
		e.run(t, func(p *ops.Plan) { p.MatMul(w, ops.F32(e.upload(t, "x", x)), y, ntok, false) })
		got := e.download(t, y.Buf)
		for r := range rows {
			require.True(t, math.IsNaN(float64(got[rows+r])), "token 1 row %d: %g", r, got[rows+r])
		}
		_, xq := optest.QuantizeQ8(x)
		for _, tok := range []int{0, 2} {
			check(t, fmt.Sprintf("token %d beside a NaN", tok), got[tok*rows:(tok+1)*rows],
				optest.MatMul(deq, xq[tok*cols:(tok+1)*cols], nil, rows, cols, 1), nmseDotQ8)
		}
	})
}

// TestMatMulDotGLU: the integer-dot GLU kernels against the integer-dot
// MatMul of the gate and up rows stacked then ActMulRows, and a batch
// against one token at a time, bit for bit.
func TestMatMulDotGLU(t *testing.T) {
	e := dotEnv(t)
	const ffn, cols, maxTok = 7, 96, 17
	gateUp := randGGUF(loader.Q4_0, 2*ffn, cols, 41)
	stacked, deq := e.uploadGGUF(t, loader.Q4_0, gateUp, 2*ffn, cols)
	mixed := e.uploadGLU(t, loader.Q4_0, gateUp, ffn, cols)
	x := optest.Rand(51, maxTok*cols)
	xb := ops.F32(e.upload(t, "x", x))
	single := ops.F32(e.zeros(t, "single", maxTok*ffn))
	e.run(t, func(p *ops.Plan) {
		for k := range maxTok {
			p.MatMulGLU(mixed, xb.Sub(uint64(k*cols), uint64(cols)), single.Sub(uint64(k*ffn), uint64(ffn)), 1, loader.ActSiLU)
		}
	})
	alone := e.download(t, single.Buf)
	gu := ops.F32(e.zeros(t, "gu", maxTok*2*ffn))
	want, got := ops.F32(e.zeros(t, "want", maxTok*ffn)), ops.F32(e.zeros(t, "got", maxTok*ffn))
	e.run(t, func(p *ops.Plan) {
		p.MatMul(stacked, xb, gu, maxTok, false)
		p.ActMulRows(loader.ActSiLU, gu, want, maxTok, ffn)
		p.MatMulGLU(mixed, xb, got, maxTok, loader.ActSiLU)
	})
	g := e.download(t, got.Buf)
	requireBitEqual(t, "fused against MatMul then ActMulRows", g, e.download(t, want.Buf), ffn)
	requireBitEqual(t, "a batch against one token at a time", g, alone, ffn)
	_, xq := optest.QuantizeQ8(x)
	check(t, "against x rounded", g, gluRef(loader.ActSiLU, optest.MatMul(deq, xq, nil, 2*ffn, cols, maxTok), maxTok, ffn), nmseDotQ8)
	for _, op := range []string{"matmul_swiglu1", "matmul_swiglu_tiled"} {
		ks := kernelsRun(e.lib, op, loader.Q4_0)
		require.Len(t, ks, 1, op)
		require.True(t, strings.HasSuffix(ks[0], "/dot"), "%s: %s", op, ks[0])
	}
}

// TestMatMulDotChoice: ForceDot or AllDot on a device without the integer
// dot product (the baseline feature set) is an error, AutoDot takes the
// kernels only where the device accelerates them, NoDot never, and a Dot
// kernel's pipeline on a device without the feature is an error. ForceDot
// serves only the products of a norm's output: a product of any other x
// takes the f32 kernel (and so the bits of a NoDot library), with no
// dispatch to round x.
func TestMatMulDotChoice(t *testing.T) {
	base := vktest.Device(t, vk.DeviceOptions{NoOptionalFeatures: true})
	require.False(t, base.Features.IntegerDotProduct, "the baseline enables no optional feature")
	for _, c := range []ops.DotChoice{ops.ForceDot, ops.AllDot} {
		_, err := ops.NewLibrary(base, ops.Options{Layout: ops.ForceGPU, Dot: c})
		require.ErrorContains(t, err, "integer-dot")
	}
	bl, err := ops.NewLibrary(base, ops.Options{Layout: ops.ForceGPU})
	require.NoError(t, err)
	defer bl.Close()
	on, _ := bl.IntegerDot()
	require.False(t, on)
	k, _ := shaders.WeightKernel(shaders.OpMatMul1, loader.Q8_0, shaders.GPULayout)
	dk, ok := shaders.MatMulDot(k)
	require.True(t, ok)
	_, err = bl.Pipeline(dk)
	require.ErrorContains(t, err, "shaderIntegerDotProduct")

	d := vktest.Device(t, vk.DeviceOptions{})
	for _, c := range []struct {
		choice ops.DotChoice
		want   bool
	}{
		{ops.AutoDot, d.Features.IntegerDot4x8Accelerated},
		{ops.NoDot, false},
	} {
		l, err := ops.NewLibrary(d, ops.Options{Layout: ops.ForceGPU, Dot: c.choice})
		require.NoError(t, err)
		on, all := l.IntegerDot()
		require.Equal(t, c.want && l.Shuffles(), on, "choice %d on %s (accelerated: %v)", c.choice, d.Info.Name, d.Features.IntegerDot4x8Accelerated)
		require.False(t, all)
		l.Close()
	}
	for s, want := range map[string]ops.DotChoice{"": ops.AutoDot, "auto": ops.AutoDot, "on": ops.ForceDot, "all": ops.AllDot, "off": ops.NoDot} {
		got, err := ops.ParseDot(s)
		require.NoError(t, err)
		require.Equal(t, want, got, s)
	}
	_, err = ops.ParseDot("yes")
	require.ErrorContains(t, err, "want auto, on, all or off")

	if !d.Features.IntegerDotProduct {
		t.Skipf("%s has no shaderIntegerDotProduct: ForceDot cannot run there", d.Info.Name)
	}
	force, err := ops.NewLibrary(d, ops.Options{Layout: ops.ForceGPU, Dot: ops.ForceDot})
	if err != nil {
		t.Skipf("the integer-dot matmul needs subgroup shuffles too: %v", err)
	}
	defer force.Close()
	fe, pe := &env{d: d, lib: force}, newEnvOn(t, d, ops.Options{Layout: ops.ForceGPU, Dot: ops.NoDot})
	const rows, cols, ntok = 9, 64, 3
	gguf := randGGUF(loader.Q8_0, rows, cols, 70)
	x := optest.Rand(71, ntok*cols)
	var outs [2][]float32
	for i, e := range []*env{fe, pe} {
		w, _ := e.uploadGGUF(t, loader.Q8_0, gguf, rows, cols)
		y := ops.F32(e.zeros(t, "y", ntok*rows))
		p := e.plan(t)
		p.MatMul(w, ops.F32(e.upload(t, "x", x)), y, ntok, false)
		require.NoError(t, p.Err())
		require.Equal(t, 1, p.Seq.Dispatches(), "no dispatch rounds an x that no norm made")
		e.run(t, func(p *ops.Plan) { p.MatMul(w, ops.F32(e.upload(t, "x", x)), y, ntok, false) })
		outs[i] = e.download(t, y.Buf)
	}
	requireBitEqual(t, "ForceDot's product of an x no norm made against NoDot's", outs[0], outs[1], rows)
	for _, k := range kernelsRun(force, "matmul", loader.Q8_0) {
		require.False(t, strings.HasSuffix(k, "/dot"), k)
	}
}
