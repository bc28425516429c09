package ops_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// NMSE thresholds for MatMul, per weight type. Every type is compared with
// a float64 matmul of the CPU-dequantised weights (ggml's reference
// dequantisation), so only the f32 accumulation differs: the order, and for
// the tiled types the factored sums a·Σ r·x + b·Σ x of each group (see
// matmul.comp). Measured on lavapipe, worst over all shapes and both
// feature sets: f32 1.8e-14, f16 4.2e-14, q8_0 1.6e-14, q4_0 1.8e-14; the
// tiled types are at most 1e-13 (see the test log, -v).
var nmseMatMul = func() map[loader.DType]float64 {
	m := map[loader.DType]float64{}
	for _, t := range shaders.WeightTypes {
		m[t] = 1e-10
	}
	return m
}()

// matmulShapes are (rows, cols) per block size: odd columns for f32, f16
// and bf16 (16-bit rows are padded to whole words), multiples of 32 for the
// 32-element block types, with odd and even numbers of blocks (the CPU
// layout takes blocks in pairs when a row has an even number), and
// multiples of 256 for the K-quants and IQ4_XS, up to more tiles per row
// than a GPU-layout workgroup has invocations (8448 columns: 132 tiles of
// 64). Rows are never a multiple of a workgroup's.
var matmulShapes = map[int][][2]int{
	1:   {{1, 1}, {7, 7}, {33, 96}, {1, 4097}, {4097, 33}, {33, 4128}, {5, 128}},
	32:  {{1, 32}, {7, 96}, {33, 4128}, {4097, 32}, {4097, 96}, {9, 256}, {17, 4096}},
	256: {{1, 256}, {7, 512}, {33, 2304}, {3, 8448}},
}

// tileTypes are the types whose prefill-tile kernels (OpMatMulTiled, from
// shaders.MatMulTileTokens tokens) the op tests run. A type's tile kernel
// is its OpMatMul module with 4 rows a row slot instead of 2, whose code
// paths the other token counts run for every type; the unit path with a
// column tail (F32) and with scales (Q4_0), the 32-column tiles with an
// offset (Q4_1) and the K-quants' 32- and 64-column tiles (Q4_K, Q6_K)
// stand for the rest, as each new variant costs lavapipe seconds of JIT.
var tileTypes = map[loader.DType]bool{loader.F32: true, loader.Q4_0: true, loader.Q4_1: true, loader.Q4_K: true, loader.Q6_K: true}

// tokenCounts are counts of ntok up to max for a type: those of a tile only
// for tileTypes.
func tokenCounts(typ loader.DType, counts ...int) []int {
	var out []int
	for _, n := range counts {
		if n < shaders.MatMulTileTokens || tileTypes[typ] {
			out = append(out, n)
		}
	}
	return out
}

func TestMatMul(t *testing.T) {
	variants(t, func(t *testing.T, e *env) { layouts(t, e, func(t *testing.T, e *env) { testMatMul(t, e) }) })
}

func testMatMul(t *testing.T, e *env) {
	for _, typ := range e.types {
		for i, s := range matmulShapes[blockSize(typ)] {
			rows, cols := s[0], s[1]
			w, deq := e.uploadRand(t, typ, rows, cols, uint64(10+i))
			for _, ntok := range tokenCounts(typ, 1, 3, 8, 9, 17) {
				t.Run(fmt.Sprintf("%s/%dx%d/ntok=%d", typ, rows, cols, ntok), func(t *testing.T) {
					x := optest.Rand(uint64(100+ntok), ntok*cols)
					y0 := optest.Rand(uint64(200+ntok), ntok*rows)
					xb, yb := e.upload(t, "x", x), e.zeros(t, "y", ntok*rows)
					e.run(t, func(p *ops.Plan) { p.MatMul(w, ops.F32(xb), ops.F32(yb), ntok, false) })
					check(t, "matmul", e.download(t, yb), optest.MatMul(deq, x, nil, rows, cols, ntok), nmseMatMul[typ])
					// y += x·Wᵀ, the fused residual add.
					ya := e.upload(t, "y", y0)
					e.run(t, func(p *ops.Plan) { p.MatMul(w, ops.F32(xb), ops.F32(ya), ntok, true) })
					check(t, "matmul accumulate", e.download(t, ya), optest.MatMul(deq, x, y0, rows, cols, ntok), nmseMatMul[typ])
				})
			}
		}
	}
}

// TestMatMulOffsets binds x and y at unaligned element offsets inside
// larger buffers, and checks that MatMul writes nothing outside y.
//
// An x at element 5 cannot take 16-byte loads: the untiled types' CPU
// layout runs the GPU layout's kernel there, the tiled types their
// scalar-x variant (and the pick says so), and the GPU layout's kernels
// stage x in scalar loads by a uniform branch; one at element 8 can.
func TestMatMulOffsets(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	// The tiled types share their scalar-x path: Q4_K stands for them.
	for _, typ := range []loader.DType{loader.F32, loader.F16, loader.Q8_0, loader.Q4_0, loader.Q4_K} {
		for _, xOff := range []int{5, 8} {
			t.Run(fmt.Sprintf("%s/x@%d", typ, xOff), func(t *testing.T) { testMatMulOffsets(t, e, typ, xOff) })
		}
	}
}

func testMatMulOffsets(t *testing.T, e *env, typ loader.DType, xOff int) {
	const rows, ntok = 37, 5
	cols := 4 * max(32, blockSize(typ)) // an even number of blocks: the table's kernel at x@8
	w, deq := e.uploadRand(t, typ, rows, cols, 3)
	all := optest.Rand(4, xOff+ntok*cols+3+ntok*rows+9)
	buf := e.upload(t, "packed", all)
	x := ops.F32(buf).Sub(uint64(xOff), uint64(ntok*cols))
	y := ops.F32(buf).Sub(uint64(xOff+ntok*cols+3), ntok*rows)
	e.run(t, func(p *ops.Plan) { p.MatMul(w, x, y, ntok, true) })
	got := e.download(t, buf)
	want := optest.MatMul(deq, all[x.Off:x.Off+x.Len], all[y.Off:y.Off+y.Len], rows, cols, ntok)
	check(t, "matmul at offsets", got[y.Off:y.Off+y.Len], want, nmseMatMul[typ])
	optest.Check(t, "before y untouched", got[:y.Off], all[:y.Off], 0)
	optest.Check(t, "after y untouched", got[y.Off+y.Len:], all[y.Off+y.Len:], 0)
	table, _ := shaders.WeightKernel(shaders.OpMatMul, typ, e.lib.Layout())
	kernel := table
	switch {
	case xOff%4 == 0 || e.lib.Layout() == shaders.GPULayout:
	case !shaders.Tiled(typ):
		kernel, _ = shaders.WeightKernel(shaders.OpMatMul, typ, shaders.GPULayout)
	default:
		kernel = table.WithSpec(4, 0)
	}
	if sh, ok := shaders.MatMulShuffled(kernel); ok && e.lib.Shuffles() { // a GPU-layout kernel, where the device shuffles
		kernel = sh
	}
	require.Contains(t, kernelsRun(e.lib, "matmul", typ), kernel.Name)
}

// kernelsRun are the kernels the library picked for op on type t.
func kernelsRun(l *ops.Library, op string, t loader.DType) []string {
	var ks []string
	for _, p := range l.Picks() {
		if p.Op == op && p.Type == t.String() {
			ks = append(ks, p.Kernel)
		}
	}
	return ks
}

// TestMatMulBitExact requires a token's result to be bit-identical whatever
// the batch it is computed in (ntok and its index within the batch): a
// chunked prefill must equal token-by-token decode bit for bit.
func TestMatMulBitExact(t *testing.T) {
	variants(t, func(t *testing.T, e *env) { layouts(t, e, func(t *testing.T, e *env) { testMatMulBitExact(t, e) }) })
	// A workgroup wider than the reduction folds its partial sums first.
	t.Run("full/wg512", func(t *testing.T) {
		e := newEnv(t, vk.DeviceOptions{}, 512)
		e.types = []loader.DType{loader.F32, loader.F16, loader.Q8_0, loader.Q4_0, loader.Q4_K}
		layouts(t, e, func(t *testing.T, e *env) { testMatMulBitExact(t, e) })
	})
}

func testMatMulBitExact(t *testing.T, e *env) {
	const maxTok = 17
	for _, typ := range e.types {
		for _, cols := range []int{4128, 4097, 4096} {
			if cols%blockSize(typ) != 0 || (blockSize(typ) < 256) == (cols == 4096) {
				continue
			}
			t.Run(fmt.Sprintf("%s/cols=%d", typ, cols), func(t *testing.T) { testMatMulBitExactShape(t, e, typ, 33, cols) })
		}
	}
}

func testMatMulBitExactShape(t *testing.T, e *env, typ loader.DType, rows, cols int) {
	const maxTok = 17
	w, deq := e.uploadRand(t, typ, rows, cols, 5)
	x := optest.Rand(6, maxTok*cols)
	for i := range x {
		x[i] *= float32(1 + i%7*100) // a wide range of magnitudes, so rounding shows
	}
	xb := ops.F32(e.upload(t, "x", x))
	// One token at a time, as decode does.
	single := ops.F32(e.zeros(t, "single", maxTok*rows))
	e.run(t, func(p *ops.Plan) {
		for i := range maxTok {
			p.MatMul(w, xb.Sub(uint64(i*cols), uint64(cols)), single.Sub(uint64(i*rows), uint64(rows)), 1, false)
		}
	})
	want := e.download(t, single.Buf)
	check(t, "matmul one token at a time", want, optest.MatMul(deq, x, nil, rows, cols, maxTok), nmseMatMul[typ])
	for _, k := range tokenCounts(typ, 2, 7, 8, 9, 16, 17) {
		for _, start := range []int{0, maxTok - k, 3} {
			if start+k > maxTok {
				continue
			}
			batch := ops.F32(e.zeros(t, "batch", k*rows))
			e.run(t, func(p *ops.Plan) {
				p.MatMul(w, xb.Sub(uint64(start*cols), uint64(k*cols)), batch, k, false)
			})
			got := e.download(t, batch.Buf)
			for j := range got {
				tok, row := start+j/rows, j%rows
				if math.Float32bits(got[j]) != math.Float32bits(want[tok*rows+row]) {
					t.Fatalf("ntok=%d from token %d: token %d row %d: batch %g (%#x), alone %g (%#x)", k, start, tok, row,
						got[j], math.Float32bits(got[j]), want[tok*rows+row], math.Float32bits(want[tok*rows+row]))
				}
			}
		}
	}
}

// TestMatMulLargerThanOneBinding multiplies weights larger than
// maxStorageBufferRange (128 MiB on lavapipe), which are bound in row
// blocks, and embeds rows from every block of them: F16, Q4_0, the two
// types of Q4_K_M, and Q5_0, whose odd side (3 halves a block) makes a row
// block's sides start in the middle of a word.
func TestMatMulLargerThanOneBinding(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates >128 MiB weights")
	}
	e := newEnv(t, vk.DeviceOptions{}, 0)
	limit := e.d.Info.MaxStorageBufferRange
	for _, typ := range []loader.DType{loader.F16, loader.Q4_0, loader.Q4_K, loader.Q6_K, loader.Q5_0} {
		t.Run(typ.String(), func(t *testing.T) {
			const cols, ntok = 4096, 3
			rowBytes := uint64(cols * 2) // f16
			if from, to, ok := shaders.BlockBody(typ); ok {
				rowBytes = cols / typ.BlockSize() * (to - from) // the main array's row
			}
			rows := int(limit/rowBytes) + 1001
			size, err := ops.PackedSize(typ, rows, cols)
			require.NoError(t, err)
			if size > e.d.Info.MaxMemoryAllocationSize {
				t.Skipf("a %d-byte weight exceeds maxMemoryAllocationSize on %s", size, e.d.Info.Name)
			}
			w, deq := e.uploadGGUF(t, typ, randGGUF(typ, rows, cols, 9), rows, cols)
			require.Greater(t, w.Buf.Size, limit)
			x := optest.Rand(10, ntok*cols)
			xb, yb := e.upload(t, "x", x), e.zeros(t, "y", ntok*rows)
			ids := []uint32{0, uint32(rows - 1), uint32(rows / 2), uint32(rows), 12345}
			tok, eb := e.uploadU32(t, "tokens", ids), e.zeros(t, "embedded", len(ids)*cols)
			e.run(t, func(p *ops.Plan) {
				p.MatMul(w, ops.F32(xb), ops.F32(yb), ntok, false)
				p.Embed(w, ops.F32(tok), ops.F32(eb), len(ids))
			})
			check(t, "matmul >1 binding", e.download(t, yb), optest.MatMul(deq, x, nil, rows, cols, ntok), nmseMatMul[typ])
			check(t, "embed >1 binding", e.download(t, eb), optest.Embed(deq, ids, rows, cols), nmseEmbed)
		})
	}
}

// TestMatMulTokenBlocks runs MatMul and Embed with an x larger than one
// binding, which is split into blocks of tokens (one dispatch each).
func TestMatMulTokenBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates >128 MiB activations")
	}
	e := newEnv(t, vk.DeviceOptions{}, 0)
	const rows, cols = 3, 4096
	ntok := int(e.d.Info.MaxStorageBufferRange/(4*cols)) + 9
	w, deq := e.uploadWeight(t, loader.Q4_0, optest.Rand(11, rows*cols), rows, cols)
	x := optest.Rand(12, ntok*cols)
	xb, yb := e.upload(t, "x", x), e.zeros(t, "y", ntok*rows)
	require.Greater(t, xb.Size, e.d.Info.MaxStorageBufferRange)
	e.run(t, func(p *ops.Plan) { p.MatMul(w, ops.F32(xb), ops.F32(yb), ntok, false) })
	check(t, "matmul, token blocks", e.download(t, yb), optest.MatMul(deq, x, nil, rows, cols, ntok), nmseMatMul[loader.Q4_0])

	ids := make([]uint32, ntok)
	for i := range ids {
		ids[i] = uint32(i % (rows + 1)) // every 4th is out of range
	}
	tok := e.uploadU32(t, "tokens", ids)
	e.run(t, func(p *ops.Plan) { p.Embed(w, ops.F32(tok), ops.F32(xb), ntok) })
	check(t, "embed, token blocks", e.download(t, xb), optest.Embed(deq, ids, rows, cols), nmseEmbed)
}

func TestMatMulShapeErrors(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	w, _ := e.uploadWeight(t, loader.Q4_0, optest.Rand(1, 4*64), 4, 64)
	b := ops.F32(e.zeros(t, "b", 1024))
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.MatMul(w, b.Sub(0, 64), b.Sub(64, 5), 1, false) }), "shape mismatch")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.MatMul(w, b.Sub(0, 64), b.Sub(64, 4), 0, false) }), "shape mismatch")
	small := w
	small.Rows = 400
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.MatMul(small, b.Sub(0, 64), b.Sub(64, 400), 1, false) }), "needs")
	bad := w
	bad.Type = loader.IQ2_XXS
	require.Error(t, e.try(t, func(p *ops.Plan) { p.MatMul(bad, b.Sub(0, 64), b.Sub(64, 4), 1, false) }))
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Embed(w, b.Sub(0, 2), b.Sub(64, 64), 1) }), "shape mismatch")
}

// BenchmarkMatMul reports GB/s of weight bytes read (b.SetBytes is the
// packed weight's size per MatMul; with ntok > matmulTokens a weight is read
// once per 8 tokens) and tok/s, 16 back-to-back MatMuls per submit as in a
// decode step.
//
// Every type runs the one-token product of 4096²; the types of the common
// files (F16, Q4_0, and Q4_K and Q6_K, which make Q4_K_M) also the FFN's
// 14336×4096 and 8 tokens, in the device's own choice of kernels. Q4_0 and
// Q8_0 also run in the GPU layout with the integer-dot products on and off
// (dot=on, dot=off; dot=on skips where the device has none), at 1, 8 and
// 64 tokens, for benchstat to compare.
func BenchmarkMatMul(b *testing.B) {
	type bench struct {
		typ              loader.DType
		rows, cols, ntok int
		dot              string // "": the device's default library; "on", "off": GPU layout, ForceDot or NoDot
	}
	var cases []bench
	for _, typ := range shaders.WeightTypes {
		cases = append(cases, bench{typ, 4096, 4096, 1, ""})
		if typ == loader.F16 || typ == loader.Q4_0 || typ == loader.Q4_K || typ == loader.Q6_K {
			cases = append(cases, bench{typ, 14336, 4096, 1, ""}, bench{typ, 4096, 4096, 8, ""})
		}
	}
	for _, typ := range shaders.DotTypes {
		for _, ntok := range []int{1, 8, 64} {
			for _, dot := range []string{"on", "off"} {
				cases = append(cases, bench{typ, 4096, 4096, ntok, dot})
			}
		}
	}
	for _, c := range cases {
		typ, rows, cols, ntok := c.typ, c.rows, c.cols, c.ntok
		name := fmt.Sprintf("%s/%dx%d/ntok=%d", typ, rows, cols, ntok)
		if c.dot != "" {
			name += "/dot=" + c.dot
		}
		b.Run(name, func(b *testing.B) {
			e := newBenchEnv(b)
			if c.dot != "" {
				choice, _ := ops.ParseDot(c.dot)
				lib, err := ops.NewLibrary(e.d, ops.Options{Layout: ops.ForceGPU, Dot: choice})
				if err != nil {
					b.Skip(err)
				}
				b.Cleanup(lib.Close)
				e.lib = lib
			}
			size, err := ops.PackedSize(typ, rows, cols)
			require.NoError(b, err)
			wb, err := e.d.NewBuffer("W", size, vk.DeviceMemory)
			require.NoError(b, err)
			defer wb.Close()
			packed, err := ops.Pack(typ, randGGUF(typ, rows, cols, 1), rows, cols)
			require.NoError(b, err)
			require.NoError(b, e.d.Upload(wb, 0, packed))
			w := ops.Weight{Buf: wb, Type: typ, Rows: rows, Cols: cols}
			x, err := e.d.NewBuffer("x", uint64(4*ntok*cols), vk.DeviceMemory)
			require.NoError(b, err)
			defer x.Close()
			require.NoError(b, e.d.Upload(x, 0, optest.Bytes(optest.Rand(2, ntok*cols))))
			const reps = 16
			y, err := e.d.NewBuffer("y", uint64(4*ntok*rows*reps), vk.DeviceMemory)
			require.NoError(b, err)
			defer y.Close()
			seq, err := e.d.NewSequence(vk.SequenceOptions{})
			require.NoError(b, err)
			defer seq.Close()
			require.NoError(b, seq.Begin())
			plan := e.lib.NewPlan(seq)
			defer plan.Close()
			for i := range reps {
				ys := ops.F32(y).Sub(uint64(i*ntok*rows), uint64(ntok*rows))
				plan.MatMul(w, ops.F32(x), ys, ntok, false)
			}
			require.NoError(b, plan.Err())
			require.NoError(b, seq.End())
			b.SetBytes(int64(size) * reps)
			require.NoError(b, seq.Run(time.Minute)) // lavapipe compiles on first use
			b.ResetTimer()
			for b.Loop() {
				if err := seq.Run(time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(size)*reps*float64(b.N)/sec/1e9, "GB/s")
			b.ReportMetric(float64(ntok*reps*b.N)/sec, "tok/s")
		})
	}
}

// TestMatMulShuffles: where the device offers subgroup shuffles and full
// subgroups, the GPU layout's lanes add their sums by an xor butterfly in
// registers (shaders.MatMulShuffled), which must give the shared-memory
// tree's bits. The tree runs on the baseline device (no optional feature)
// at a workgroup width of 64: the order depends on the lanes alone. One
// untiled type of 8 lanes, a tiled type of 4, and the GLU epilogue (whose
// lanes write pairs), for one token and for a prefill tile.
func TestMatMulShuffles(t *testing.T) {
	full := newEnvOn(t, vktest.Device(t, vk.DeviceOptions{}), ops.Options{Layout: ops.ForceGPU})
	if !full.lib.Shuffles() {
		t.Skipf("%s offers no subgroup shuffles with full subgroups of 8 to %d invocations: the tree alone runs there", full.d.Info.Name, full.lib.WG)
	}
	tree := newEnvOn(t, vktest.Device(t, vk.DeviceOptions{NoOptionalFeatures: true}), ops.Options{WG: 64, Layout: ops.ForceGPU})
	require.False(t, tree.lib.Shuffles(), "the baseline device enables no subgroup feature")
	k, _ := shaders.WeightKernel(shaders.OpMatMul1, loader.Q4_0, shaders.GPULayout)
	sh, _ := shaders.MatMulShuffled(k)
	_, err := tree.lib.Pipeline(sh)
	require.ErrorContains(t, err, "subgroup shuffles", "a shuffle kernel on a device without them is an error")
	const rows, cols = 37, 512
	for _, c := range []struct {
		typ loader.DType
		glu bool
	}{{loader.Q4_0, false}, {loader.Q6_K, false}, {loader.Q4_K, true}} {
		t.Run(fmt.Sprintf("%s/glu=%v", c.typ, c.glu), func(t *testing.T) {
			gguf := randGGUF(c.typ, rows+1, cols, 9) // rows+1: GLU takes (gate, up) pairs
			x := optest.Rand(8, 17*cols)
			n := rows + 1 // y's row
			if c.glu {
				n /= 2
			}
			var outs [2][]float32
			for i, e := range []*env{full, tree} {
				xb := ops.F32(e.upload(t, "x", x))
				var w ops.Weight
				if c.glu {
					w = e.uploadGLU(t, c.typ, gguf, (rows+1)/2, cols)
				} else {
					w, _ = e.uploadGGUF(t, c.typ, gguf, rows+1, cols)
				}
				for _, ntok := range []int{1, 17} {
					y := ops.F32(e.zeros(t, "y", ntok*n))
					e.run(t, func(p *ops.Plan) {
						if c.glu {
							p.MatMulGLU(w, xb.Sub(0, uint64(ntok*cols)), y, ntok, loader.ActSiLU)
						} else {
							p.MatMul(w, xb.Sub(0, uint64(ntok*cols)), y, ntok, false)
						}
					})
					outs[i] = append(outs[i], e.download(t, y.Buf)...)
				}
			}
			requireBitEqual(t, "shuffles against the tree", outs[0], outs[1], n)
			op := "matmul1"
			if c.glu {
				op = "matmul_swiglu1"
			}
			for _, l := range []struct {
				lib    *ops.Library
				suffix string
			}{{full.lib, "/shuffle"}, {tree.lib, ""}} {
				found := false
				for _, p := range l.lib.Picks() {
					if p.Op == op && p.Type == c.typ.String() {
						found = true
						require.Equal(t, p.Table+l.suffix, p.Kernel, p.Reason)
					}
				}
				require.True(t, found, "a %s pick for %s", op, c.typ)
			}
		})
	}
}
