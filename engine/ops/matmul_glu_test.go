package ops_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// gluTypes stand for every weight type in the GLU test: a plain type, the
// two unit-read legacy quants and a K-quant read in tiles. Each costs
// lavapipe's JIT six pipelines (two fused, two plain, and the activation).
var gluTypes = []loader.DType{loader.F16, loader.Q8_0, loader.Q4_0, loader.Q4_K}

// gluShapes are (ffn, cols) per block size: odd ffn, so the last
// workgroup's pair is alone, and for F16 odd columns (rows padded to whole
// words, and a tail past the last unit).
var gluShapes = map[int][][2]int{
	1:   {{7, 33}, {33, 96}},
	32:  {{7, 96}, {33, 64}},
	256: {{7, 256}, {5, 512}},
}

// uploadGLU uploads gate-up GGUF data (the ffn gate rows, then the ffn up
// rows) as PackGLU packs it, the layout MatMulGLU reads.
func (e *env) uploadGLU(t testing.TB, typ loader.DType, gateUp []byte, ffn, cols int) ops.Weight {
	t.Helper()
	packed, err := ops.PackGLU(typ, gateUp, ffn, cols)
	require.NoError(t, err)
	b, err := e.d.NewBuffer(fmt.Sprintf("W GLU %s %dx%d", typ, 2*ffn, cols), uint64(len(packed)), vk.DeviceMemory)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, e.d.Upload(b, 0, packed))
	return ops.Weight{Buf: b, Type: typ, Rows: 2 * ffn, Cols: cols}
}

// gluRef is act(g)·u in float64 for gu (ntok, 2·ffn), gate then up per row.
func gluRef(act loader.Activation, gu []float32, ntok, ffn int) []float32 {
	var g, u []float32
	for r := range ntok {
		g = append(g, gu[r*2*ffn:r*2*ffn+ffn]...)
		u = append(u, gu[r*2*ffn+ffn:(r+1)*2*ffn]...)
	}
	if act == loader.ActGELUTanh {
		return geluTanhRef(g, u)
	}
	return optest.SiluMul(g, u)
}

// TestMatMulGLU: the GPU layout's product with act(gate)·up in its
// epilogue, on gate and up rows interleaved at load, against the unfused
// MatMul of the rows stacked then ActMulRows (bit for bit: the epilogue
// applies the same functions to the same f32 sums), against float64 (NMSE),
// and one token at a time against whole batches (bit for bit, as chunked
// prefill against decode). On the full feature set and on the baseline at
// a workgroup width of 64. Measured on lavapipe: NMSE at most 8.9e-13, and
// the whole test about 15 s, most of it JIT.
func TestMatMulGLU(t *testing.T) {
	start := time.Now()
	for _, v := range []struct {
		name string
		opts vk.DeviceOptions
		wg   uint32
	}{
		{"full", vk.DeviceOptions{}, 0},
		{"baseline/wg64", vk.DeviceOptions{NoOptionalFeatures: true}, 64},
	} {
		t.Run(v.name, func(t *testing.T) {
			testMatMulGLU(t, newEnvOn(t, vktest.Device(t, v.opts), ops.Options{WG: v.wg, Layout: ops.ForceGPU}))
		})
	}
	t.Logf("%v", time.Since(start))
}

func testMatMulGLU(t *testing.T, e *env) {
	const maxTok = 17 // more than one workgroup's MatMulTokens
	for _, typ := range gluTypes {
		for i, s := range gluShapes[blockSize(typ)] {
			ffn, cols := s[0], s[1]
			gateUp := randGGUF(typ, 2*ffn, cols, uint64(40+i))
			stacked, deq := e.uploadGGUF(t, typ, gateUp, 2*ffn, cols)
			mixed := e.uploadGLU(t, typ, gateUp, ffn, cols)
			x := optest.Rand(uint64(50+i), maxTok*cols)
			for k := range x {
				x[k] *= float32(1 + k%5*20) // gate values far into the activations' tails
			}
			xb := ops.F32(e.upload(t, "x", x))
			for _, act := range []loader.Activation{loader.ActSiLU, loader.ActGELUTanh} {
				t.Run(fmt.Sprintf("%s/%dx%d/%s", typ, ffn, cols, act), func(t *testing.T) {
					// One token at a time, as decode runs it.
					single := ops.F32(e.zeros(t, "single", maxTok*ffn))
					e.run(t, func(p *ops.Plan) {
						for k := range maxTok {
							p.MatMulGLU(mixed, xb.Sub(uint64(k*cols), uint64(cols)), single.Sub(uint64(k*ffn), uint64(ffn)), 1, act)
						}
					})
					alone := e.download(t, single.Buf)
					for _, ntok := range tokenCounts(typ, 1, 3, 9, maxTok) {
						gu := ops.F32(e.zeros(t, "gu", ntok*2*ffn))
						want, got := ops.F32(e.zeros(t, "want", ntok*ffn)), ops.F32(e.zeros(t, "got", ntok*ffn))
						xs := xb.Sub(0, uint64(ntok*cols))
						e.run(t, func(p *ops.Plan) {
							p.MatMul(stacked, xs, gu, ntok, false)
							p.ActMulRows(act, gu, want, ntok, ffn)
							p.MatMulGLU(mixed, xs, got, ntok, act)
						})
						g, w := e.download(t, got.Buf), e.download(t, want.Buf)
						requireBitEqual(t, fmt.Sprintf("ntok=%d: fused against MatMul then ActMulRows", ntok), g, w, ffn)
						requireBitEqual(t, fmt.Sprintf("ntok=%d: a batch against one token at a time", ntok), g, alone[:ntok*ffn], ffn)
						check(t, fmt.Sprintf("matmul %s ntok=%d", act, ntok), g,
							gluRef(act, optest.MatMul(deq, x[:ntok*cols], nil, 2*ffn, cols, ntok), ntok, ffn), nmseMatMul[typ])
					}
				})
			}
		}
	}
	for _, typ := range gluTypes {
		found := false
		for _, p := range e.lib.Picks() {
			if p.Op == "matmul_swiglu1" && p.Type == typ.String() {
				found = true
				want := p.Table
				if e.lib.Shuffles() {
					want += "/shuffle"
				}
				require.Equal(t, want, p.Kernel, "%s: the table's kernel, or its shuffle variant where the device offers it (%s)", typ, p.Reason)
			}
		}
		require.True(t, found, "%s: the one-token SwiGLU kernel is recorded among the picks", typ)
	}
}

// TestMatMulGLUErrors: shapes and preconditions MatMulGLU refuses with an
// error, and PackGLU's.
func TestMatMulGLUErrors(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	e := newEnvOn(t, d, ops.Options{Layout: ops.ForceGPU})
	const ffn, cols, ntok = 3, 32, 2
	gateUp := randGGUF(loader.Q8_0, 2*ffn, cols, 9)
	w := e.uploadGLU(t, loader.Q8_0, gateUp, ffn, cols)
	x := ops.F32(e.zeros(t, "x", ntok*cols))
	h := ops.F32(e.zeros(t, "h", ntok*ffn))
	odd := w
	odd.Rows = 2*ffn - 1
	for _, c := range []struct {
		name   string
		record func(p *ops.Plan)
		want   string
	}{
		{"h of the gate-up width", func(p *ops.Plan) {
			p.MatMulGLU(w, x, ops.F32(e.zeros(t, "h2", ntok*2*ffn)), ntok, loader.ActSiLU)
		}, "shape mismatch"},
		{"x of another length", func(p *ops.Plan) { p.MatMulGLU(w, x.Sub(0, cols), h, ntok, loader.ActSiLU) }, "shape mismatch"},
		{"no tokens", func(p *ops.Plan) { p.MatMulGLU(w, x.Sub(0, 0), h.Sub(0, 0), 0, loader.ActSiLU) }, "shape mismatch"},
		{"an odd number of rows", func(p *ops.Plan) { p.MatMulGLU(odd, x, h, ntok, loader.ActSiLU) }, "shape mismatch"},
		{"an unknown activation", func(p *ops.Plan) { p.MatMulGLU(w, x, h, ntok, loader.Activation(9)) }, "no kernel for activation"},
		{"a weight without a buffer", func(p *ops.Plan) {
			p.MatMulGLU(ops.Weight{Type: loader.Q8_0, Rows: 2 * ffn, Cols: cols}, x, h, ntok, loader.ActSiLU)
		}, "nil buffer"},
	} {
		t.Run(c.name, func(t *testing.T) { require.ErrorContains(t, e.try(t, c.record), c.want) })
	}
	if d.Features.SubgroupArithmetic {
		ce := newEnvOn(t, d, ops.Options{Layout: ops.ForceCPU})
		require.ErrorContains(t, ce.try(t, func(p *ops.Plan) { p.MatMulGLU(w, x, h, ntok, loader.ActSiLU) }),
			"no matmul_swiglu kernel for weight type Q8_0", "the CPU layout has no fused kernel")
	}

	_, err := ops.PackGLU(loader.Q8_0, gateUp[:len(gateUp)-1], ffn, cols)
	require.ErrorContains(t, err, "bytes, want")
	_, err = ops.PackGLU(loader.Q8_0, gateUp, ffn, cols+1)
	require.Error(t, err, "a row that is not whole blocks")
	_, err = ops.PackGLU(loader.Q8_0, gateUp, 0, cols)
	require.ErrorContains(t, err, "shape mismatch")
}
