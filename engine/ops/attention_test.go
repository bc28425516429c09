package ops_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// NMSE thresholds for Attention against optest.SWA (float64). With an f32
// ring the GPU differs from the reference only by f32 rounding in the dot
// products, exp2 and sums (measured ≤ 2.1e-13 on lavapipe, over every case
// here). With an f16 ring the reference is fed the same f16-rounded keys and
// values, so the bound is the same (measured ≤ 2.1e-13); against the
// unrounded reference the f16 storage itself costs about 1e-7 (measured
// ≤ 7e-8), bounded here by 1e-5.
const (
	nmseAttention       = 1e-10
	nmseAttentionF16Raw = 1e-5
)

var kvTypes = []ops.KVType{ops.KVF32, ops.KVF16}

// attnSeq is one random sequence of queries, keys and values, for positions
// 0 … npos−1, on the device and on the host.
type attnSeq struct {
	s          optest.AttnShape
	npos       int
	q, k, v    []float32 // (npos, QDim), (npos, KVDim), (npos, KVDim)
	qb, kb, vb *vk.Buffer
	pad        uint64            // elements before q, k, v and out in their buffers
	slots      int               // the ring's slots; 0: s.Window
	sinks      int               // the ring's sinks (Ring.Sinks)
	opts       ops.AttentionOpts // the scores' scale and soft-cap
	sq         []float32         // (npos, QDim): the sink queries (AttentionOpts.SinkQuery), or none
	sqb        *vk.Buffer
	attend     bool // record Attend (attention and store, fused where it can be) instead of the two ops
}

// withSinkQueries gives a random sink queries of their own, unlike q, so
// that a sink scored with the wrong one shows.
func (a *attnSeq) withSinkQueries(t testing.TB, e *env, seed uint64) {
	a.sq = optest.Rand(seed, a.npos*a.s.QDim())
	for i := range a.sq {
		a.sq[i] *= 3
	}
	a.sqb = e.put(t, "sink queries", append(make([]float32, a.pad), a.sq...))
}

func newAttnSeq(t testing.TB, e *env, s optest.AttnShape, npos int, seed uint64) *attnSeq {
	a := &attnSeq{s: s, npos: npos,
		q: optest.Rand(seed, npos*s.QDim()),
		k: optest.Rand(seed+1, npos*s.KVDim()),
		v: optest.Rand(seed+2, npos*s.KVDim()),
	}
	// Larger queries sharpen the softmax, so that a wrong key is visible.
	for i := range a.q {
		a.q[i] *= 3
	}
	a.qb, a.kb, a.vb = e.put(t, "q", a.q), e.put(t, "k", a.k), e.put(t, "v", a.v)
	return a
}

// run processes positions [0, npos) in chunks whose sizes cycle through sizes.
// Each chunk records Attention (only if it reaches position from), then
// StoreKV, all in one submission. It returns the outputs of positions
// [from, npos), (npos−from, QDim). The ring and the outputs start as NaN, so
// a read of an unwritten slot or a missing output is caught.
func (a *attnSeq) run(t testing.TB, e *env, kv ops.KVType, sizes []int, from int) []float32 {
	s := a.s
	slots := a.slots
	if slots == 0 {
		slots = s.Window
	}
	ringBytes := ops.RingBytes(kv, a.sinks+slots, s.KVDim())
	rk, err := e.d.NewBuffer("ring K", ringBytes, vk.DeviceMemory)
	require.NoError(t, err)
	defer rk.Close()
	rv, err := e.d.NewBuffer("ring V", ringBytes, vk.DeviceMemory)
	require.NoError(t, err)
	defer rv.Close()
	ring := ops.Ring{K: rk, V: rv, Window: s.Window, Slots: slots, Sinks: a.sinks, KVDim: s.KVDim(), Type: kv}

	var pos0s []uint32
	var chunks []int
	for pos, i := 0, 0; pos < a.npos; i++ {
		c := min(sizes[i%len(sizes)], a.npos-pos)
		pos0s = append(pos0s, uint32(pos))
		chunks = append(chunks, c)
		pos += c
	}
	steps := make([]byte, 4*len(pos0s))
	for i, p := range pos0s {
		binary.LittleEndian.PutUint32(steps[4*i:], p)
	}
	sb, err := e.d.NewBuffer("steps", uint64(len(steps)), vk.DeviceMemory)
	require.NoError(t, err)
	defer sb.Close()
	require.NoError(t, e.d.Upload(sb, 0, steps))
	out := e.alloc(t, "out", int(a.pad)+a.npos*s.QDim())

	seq, err := e.d.NewSequence(vk.SequenceOptions{OneTime: true})
	require.NoError(t, err)
	defer seq.Close()
	require.NoError(t, seq.Begin())
	plan := e.lib.NewPlan(seq)
	defer plan.Close()
	nan := math.Float32bits(float32(math.NaN())) | 0xffff // an f16 NaN in both halves too
	seq.Fill(rk.All(), nan)
	seq.Fill(rv.All(), nan)
	seq.Fill(out.All(), nan)
	qd, kd := uint64(s.QDim()), uint64(s.KVDim())
	for i, c := range chunks {
		p0, n := uint64(pos0s[i]), uint64(c)
		step := ops.F32(sb).Sub(uint64(i), 1)
		k, v := ops.F32(a.kb).Sub(a.pad+p0*kd, n*kd), ops.F32(a.vb).Sub(a.pad+p0*kd, n*kd)
		if int(p0)+c > from {
			q, o := ops.F32(a.qb).Sub(a.pad+p0*qd, n*qd), ops.F32(out).Sub(a.pad+p0*qd, n*qd)
			opts := a.opts
			if a.sqb != nil {
				opts.SinkQuery = ops.F32(a.sqb).Sub(a.pad+p0*qd, n*qd)
			}
			if a.attend {
				plan.Attend(q, k, v, ring, step, o, c, s.Heads, s.KVHeads, s.HeadDim, opts)
				require.NoError(t, plan.Err())
				continue
			}
			plan.Attention(q, k, v, ring, step, o, c, s.Heads, s.KVHeads, s.HeadDim, opts)
		}
		plan.StoreKV(k, v, ring, step, c)
		require.NoError(t, plan.Err())
	}
	require.NoError(t, seq.End())
	require.NoError(t, seq.Run(5*time.Minute))
	got := e.get(t, out)
	return got[int(a.pad)+from*s.QDim():]
}

// put and alloc are upload and zeros for tests and benchmarks alike.
func (e *env) put(tb testing.TB, name string, v []float32) *vk.Buffer {
	b := e.alloc(tb, name, len(v))
	require.NoError(tb, e.d.Upload(b, 0, optest.Bytes(v)))
	return b
}

func (e *env) alloc(tb testing.TB, name string, n int) *vk.Buffer {
	b, err := e.d.NewBuffer(name, uint64(4*n), vk.DeviceMemory)
	require.NoError(tb, err)
	tb.Cleanup(func() { b.Close() })
	return b
}

func (e *env) get(tb testing.TB, b *vk.Buffer) []float32 {
	out := make([]byte, b.Size)
	require.NoError(tb, e.d.Download(b, 0, out))
	return optest.Floats(out)
}

// chunkSizes are the chunkings each case runs: 1 (decode), 2, W−1, W, and 7,
// which divides none of the sequence lengths; only sizes in [1, W].
func chunkSizes(w int) []int {
	var cs []int
	for _, c := range []int{1, 2, w - 1, w, 7} {
		if c >= 1 && c <= w && !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	return cs
}

// worst keeps the largest NMSE seen per label, for the log.
type worst struct {
	mu sync.Mutex
	m  map[string]float64
}

func (w *worst) note(label string, v float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]float64{}
	}
	w.m[label] = max(w.m[label], v)
}

func (w *worst) log(t *testing.T) {
	keys := make([]string, 0, len(w.m))
	for k := range w.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Logf("largest NMSE %s: %.3g", k, w.m[k])
	}
}

// f16Rounding finds how the device's packHalf2x16 rounds (Vulkan leaves it to
// the device: to nearest even or toward zero) by storing values that round
// differently, and returns the matching reference rounding.
func f16Rounding(t *testing.T, e *env) func([]float32) []float32 {
	vals := []float32{1 + 1.0/2048 + 1.0/8192, -(1 + 1.0/2048 + 1.0/8192)} // RNE rounds away from zero, RTZ toward
	rk, rv := e.alloc(t, "rk", 1), e.alloc(t, "rv", 1)
	kb, sb := e.put(t, "k", vals), e.alloc(t, "step", 1)
	ring := ops.Ring{K: rk, V: rv, Window: 1, Slots: 1, KVDim: 2, Type: ops.KVF16}
	e.run(t, func(p *ops.Plan) {
		p.StoreKV(ops.F32(kb), ops.F32(kb), ring, ops.F32(sb), 1)
	})
	w := binary.LittleEndian.Uint32(optest.Bytes(e.get(t, rk)))
	switch w {
	case uint32(optest.ToF16(vals[0])) | uint32(optest.ToF16(vals[1]))<<16:
		return optest.RoundF16
	case uint32(optest.ToF16RTZ(vals[0])) | uint32(optest.ToF16RTZ(vals[1]))<<16:
		t.Logf("%s rounds packHalf2x16 toward zero", e.d.Info.Name)
		return func(v []float32) []float32 {
			out := make([]float32, len(v))
			for i, x := range v {
				out[i] = optest.FromF16(optest.ToF16RTZ(x))
			}
			return out
		}
	}
	t.Fatalf("packHalf2x16 rounding: got %#08x", w)
	return nil
}

// reference is optest.SWA (swaOpts when a has options or sinks) with keys
// and values rounded as the ring stores them.
func reference(a *attnSeq, round func([]float32) []float32, from int) []float32 {
	k, v := a.k, a.v
	if round != nil {
		k, v = round(k), round(v)
	}
	if a.sq != nil {
		return swaSinkQ(a.q[from*a.s.QDim():], a.sq[from*a.s.QDim():], k, v, from, a.npos, a.s, a.opts, a.sinks)
	}
	if a.opts != (ops.AttentionOpts{}) || a.sinks > 0 {
		return swaOpts(a.q[from*a.s.QDim():], k, v, from, a.npos, a.s, a.opts, a.sinks)
	}
	return optest.SWA(a.q[from*a.s.QDim():], k, v, from, a.npos, a.s)
}

// swaOpts is optest.SWA with Attention's options and sinks, in float64: per
// head, the softmax over the query's keys (the sinks j < min(sinks, lo),
// then the band lo … pos) of sⱼ = q·kⱼ·Scale (1/√HeadDim when 0),
// soft-capped to Softcap·tanh(sⱼ/Softcap) when Softcap ≠ 0, weighs the vⱼ.
// TestAttentionReferenceOpts and TestAttentionReferenceSinks tie it to
// optest.SWA.
func swaOpts(q, k, v []float32, from, to int, s optest.AttnShape, o ops.AttentionOpts, sinks int) []float32 {
	return swaSinkQ(q, nil, k, v, from, to, s, o, sinks)
}

// swaSinkQ is swaOpts where, with sq non-nil, a sink outside the band (j <
// min(sinks, lo), lo = max(0, pos − W + 1)) is scored with the query's sink
// query sq (rows as q) instead of q (AttentionOpts.SinkQuery).
func swaSinkQ(q, sq, k, v []float32, from, to int, s optest.AttnShape, o ops.AttentionOpts, sinks int) []float32 {
	hd, qd, kd, group := s.HeadDim, s.QDim(), s.KVDim(), s.Heads/s.KVHeads
	scale := 1 / math.Sqrt(float64(hd))
	if o.Scale != 0 {
		scale = float64(o.Scale)
	}
	out := make([]float32, (to-from)*qd)
	for pos := from; pos < to; pos++ {
		keys := sinkKeys(pos, s.Window, sinks)
		lo := 0
		if s.Window > 0 {
			lo = max(0, pos-s.Window+1)
		}
		for h := range s.Heads {
			col := h / group * hd
			sc := make([]float64, len(keys))
			m := math.Inf(-1)
			for u, j := range keys {
				qr := q[(pos-from)*qd:]
				if sq != nil && j < min(sinks, lo) {
					qr = sq[(pos-from)*qd:]
				}
				var dot float64
				for d := range hd {
					dot += float64(qr[h*hd+d]) * float64(k[j*kd+col+d])
				}
				x := dot * scale
				if o.Softcap != 0 {
					c := float64(o.Softcap)
					x = c * math.Tanh(x/c)
				}
				sc[u], m = x, max(m, x)
			}
			var sum float64
			acc := make([]float64, hd)
			for u, j := range keys {
				e := math.Exp(sc[u] - m)
				sum += e
				for d := range acc {
					acc[d] += e * float64(v[j*kd+col+d])
				}
			}
			for d, x := range acc {
				out[(pos-from)*qd+h*hd+d] = float32(x / sum)
			}
		}
	}
	return out
}

// sinkKeys is the positions the query at pos attends, in order: with
// window w (0: every key from 0) and n sinks, the keys j ≤ pos with j < n or
// j > pos − w, each once.
func sinkKeys(pos, w, n int) []int {
	var keys []int
	for j := range pos + 1 {
		if w == 0 || j < n || j > pos-w {
			keys = append(keys, j)
		}
	}
	return keys
}

// TestAttention runs sequences of 20·W+7 positions (the ring wraps 20 times)
// through Attention and StoreKV in chunks of 1, 2, W−1, W and 7 tokens, for
// windows 1, 3, 4, 16, head dims 8, 64, 128 and GQA 1:1, 2:1, 4:1, with f32
// and f16 rings. Every chunking must match the float64 reference, and must
// equal decoding one token at a time bit for bit.
func TestAttention(t *testing.T) {
	heads := [][2]int{{3, 3}, {4, 2}, {8, 2}} // (heads, KV heads): GQA 1:1, 2:1, 4:1
	var stats worst
	variants(t, func(t *testing.T, e *env) {
		layouts(t, e, func(t *testing.T, e *env) {
			round := f16Rounding(t, e)
			for _, kv := range kvTypes {
				for _, hd := range []int{8, 64, 128} {
					for hi, hh := range heads {
						for _, w := range []int{1, 3, 4, 16} {
							s := optest.AttnShape{Heads: hh[0], KVHeads: hh[1], HeadDim: hd, Window: w}
							name := fmt.Sprintf("%v/hd=%d/heads=%dx%d/W=%d", kv, hd, hh[0], hh[1], w)
							t.Run(name, func(t *testing.T) {
								testChunkings(t, e, kv, s, 20*w+7, uint64(1000*hd+100*hi+w), round, &stats)
							})
						}
					}
				}
			}
		})
	})
	stats.log(t)
}

// TestAttentionShapes covers head dims that exercise the other work splits:
// head_dim/2 not a power of two (2, 6, 24), head_dim/2 = WG/2 and head_dim/2
// larger than the workgroup (256 with WG 64), and GQA 8:1.
func TestAttentionShapes(t *testing.T) {
	shapes := []optest.AttnShape{
		{Heads: 2, KVHeads: 1, HeadDim: 2, Window: 5},
		{Heads: 3, KVHeads: 1, HeadDim: 6, Window: 9},
		{Heads: 8, KVHeads: 1, HeadDim: 24, Window: 6},
		{Heads: 2, KVHeads: 2, HeadDim: 256, Window: 4},
		{Heads: 4, KVHeads: 2, HeadDim: 256, Window: 130},
	}
	var stats worst
	variants(t, func(t *testing.T, e *env) {
		layouts(t, e, func(t *testing.T, e *env) {
			round := f16Rounding(t, e)
			for _, kv := range kvTypes {
				for i, s := range shapes {
					name := fmt.Sprintf("%v/hd=%d/heads=%dx%d/W=%d", kv, s.HeadDim, s.Heads, s.KVHeads, s.Window)
					t.Run(name, func(t *testing.T) {
						npos := 3*s.Window + 11
						if s.Window < 16 {
							npos = 20*s.Window + 7
						}
						testChunkings(t, e, kv, s, npos, uint64(7000+i), round, &stats)
					})
				}
			}
		})
	})
	stats.log(t)
}

func testChunkings(t *testing.T, e *env, kv ops.KVType, s optest.AttnShape, npos int, seed uint64, round func([]float32) []float32, stats *worst) {
	a := newAttnSeq(t, e, s, npos, seed)
	var want, raw []float32
	if kv == ops.KVF16 {
		want, raw = reference(a, round, 0), reference(a, nil, 0)
	} else {
		want = reference(a, nil, 0)
	}
	var decode []float32
	for _, c := range chunkSizes(s.Window) {
		got := a.run(t, e, kv, []int{c}, 0)
		label := fmt.Sprintf("chunk %d", c)
		optest.Check(t, label, got, want, nmseAttention)
		stats.note(fmt.Sprintf("%v ring vs reference on the same %v values", kv, kv), optest.NMSE(got, want))
		if raw != nil {
			optest.Check(t, label+" vs unrounded f32 reference", got, raw, nmseAttentionF16Raw)
			stats.note("f16 ring vs unrounded f32 reference", optest.NMSE(got, raw))
		}
		if c == 1 {
			decode = got
			continue
		}
		requireBitEqual(t, fmt.Sprintf("chunk %d vs chunk 1", c), got, decode, s.QDim())
	}
}

// requireBitEqual fails at the first output that differs in any bit.
func requireBitEqual(t testing.TB, what string, got, want []float32, rowLen int) {
	t.Helper()
	require.Equal(t, len(want), len(got), what)
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: position %d, element %d: %g (%#08x) != %g (%#08x)", what, i/rowLen, i%rowLen,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestAttentionOffsets runs tensors that start at every element offset
// within their buffers (so the kernel binds them with an element remainder and
// reads the chunk's keys without 16-byte loads), which must not change a bit.
func TestAttentionOffsets(t *testing.T) {
	s := optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 64, Window: 6}
	const npos = 50
	variants(t, func(t *testing.T, e *env) {
		layouts(t, e, func(t *testing.T, e *env) {
			for _, kv := range kvTypes {
				t.Run(kv.String(), func(t *testing.T) {
					a := newAttnSeq(t, e, s, npos, 21)
					want := a.run(t, e, kv, []int{4}, 0)
					for pad := uint64(1); pad < 8; pad++ {
						b := *a
						padding := make([]float32, pad)
						b.pad = pad
						b.qb = e.put(t, "q", append(padding, a.q...))
						b.kb = e.put(t, "k", append(padding, a.k...))
						b.vb = e.put(t, "v", append(padding, a.v...))
						for _, sizes := range [][]int{{4}, {1}, {5, 6}} {
							requireBitEqual(t, fmt.Sprintf("pad %d, chunks %v", pad, sizes), b.run(t, e, kv, sizes, 0), want, s.QDim())
						}
					}
				})
			}
		})
	})
}

// TestAttentionWindowBeyondSequence: with W larger than the sequence, sliding
// window attention is full causal attention, whatever W and the chunking.
func TestAttentionWindowBeyondSequence(t *testing.T) {
	const npos = 37
	variants(t, func(t *testing.T, e *env) {
		layouts(t, e, func(t *testing.T, e *env) {
			for _, kv := range kvTypes {
				t.Run(kv.String(), func(t *testing.T) {
					var first []float32
					for _, w := range []int{npos + 1, 64, 1000} {
						s := optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 64, Window: w}
						a := newAttnSeq(t, e, s, npos, 77)
						full := s
						full.Window = 0
						var round func([]float32) []float32
						if kv == ops.KVF16 {
							round = optest.RoundF16
						}
						want := reference(&attnSeq{s: full, npos: npos, q: a.q, k: a.k, v: a.v}, round, 0)
						for _, sizes := range [][]int{{npos}, {1}, {5}, {30, 7}} {
							got := a.run(t, e, kv, sizes, 0)
							optest.Check(t, fmt.Sprintf("W=%d chunks %v vs full causal", w, sizes), got, want, nmseAttention)
							if first == nil {
								first = got
							}
							requireBitEqual(t, fmt.Sprintf("W=%d chunks %v", w, sizes), got, first, s.QDim())
						}
					}
				})
			}
		})
	})
}

// TestAttentionRings covers rings whose slots differ from the window and
// the score options: a global ring (Window 0: every key from position 0, a
// linear cache of 37 slots), local rings with more slots than the window
// (chunks longer than the window), a custom Scale, and Softcap 50 (Gemma 2),
// small enough to reach tanh's exponential form (3) and its clamp (0.5 at
// Scale 4). Every chunking must match the float64 reference and equal
// decoding one token at a time bit for bit; a local ring's result must not
// depend on its slots.
func TestAttentionRings(t *testing.T) {
	shape := func(w int) optest.AttnShape { return optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 8, Window: w} }
	cases := []struct {
		name  string
		s     optest.AttnShape
		slots int
		opts  ops.AttentionOpts
		npos  int
		sizes [][]int // chunkings; the first is decode
	}{
		{"global", shape(0), 37, ops.AttentionOpts{}, 37, [][]int{{1}, {2}, {7}, {37}, {30, 7}}},
		{"W=5/slots=8", shape(5), 8, ops.AttentionOpts{}, 47, [][]int{{1}, {5}, {8}, {7}, {8, 3}}},
		{"W=5/slots=8/softcap=50", shape(5), 8, ops.AttentionOpts{Softcap: 50}, 47, [][]int{{1}, {3}, {8}, {6, 8}}},
		{"W=5/scale=0.2", shape(5), 5, ops.AttentionOpts{Scale: 0.2}, 31, [][]int{{1}, {5}, {2, 3}}},
		{"global/scale=0.7/softcap=3", shape(0), 37, ops.AttentionOpts{Scale: 0.7, Softcap: 3}, 37, [][]int{{1}, {7}, {37}}},
		{"W=4/scale=4/softcap=0.5", shape(4), 4, ops.AttentionOpts{Scale: 4, Softcap: 0.5}, 29, [][]int{{1}, {4}, {3}}},
	}
	var stats worst
	variants(t, func(t *testing.T, e *env) {
		layouts(t, e, func(t *testing.T, e *env) {
			round := f16Rounding(t, e)
			for _, kv := range kvTypes {
				for i, c := range cases {
					t.Run(kv.String()+"/"+c.name, func(t *testing.T) {
						a := newAttnSeq(t, e, c.s, c.npos, uint64(300+i))
						a.slots, a.opts = c.slots, c.opts
						var want, raw []float32
						if kv == ops.KVF16 {
							want, raw = reference(a, round, 0), reference(a, nil, 0)
						} else {
							want = reference(a, nil, 0)
						}
						var decode []float32
						for _, sizes := range c.sizes {
							got := a.run(t, e, kv, sizes, 0)
							label := fmt.Sprintf("chunks %v", sizes)
							optest.Check(t, label, got, want, nmseAttention)
							stats.note(fmt.Sprintf("%v ring, options %+v", kv, c.opts), optest.NMSE(got, want))
							if raw != nil {
								optest.Check(t, label+" vs unrounded f32 reference", got, raw, nmseAttentionF16Raw)
							}
							if decode == nil {
								decode = got
								continue
							}
							requireBitEqual(t, label+" vs decode", got, decode, c.s.QDim())
						}
						if c.s.Window > 0 && c.slots > c.s.Window {
							b := *a
							b.slots = c.s.Window
							requireBitEqual(t, fmt.Sprintf("%d slots vs %d", c.slots, c.s.Window), b.run(t, e, kv, []int{1}, 0), decode, c.s.QDim())
						}
					})
				}
			}
		})
	})
	stats.log(t)
}

// TestAttentionReferenceOpts ties swaOpts to optest.SWA: with no options
// they agree; a Scale λ equals scaling the queries by λ·√HeadDim; a huge
// Softcap changes nothing measurable; and a tiny one flattens the softmax
// to the band's mean value.
func TestAttentionReferenceOpts(t *testing.T) {
	for _, s := range []optest.AttnShape{{Heads: 4, KVHeads: 2, HeadDim: 6, Window: 5}, {Heads: 3, KVHeads: 1, HeadDim: 8, Window: 0}} {
		const npos = 23
		q, k, v := optest.Rand(1, npos*s.QDim()), optest.Rand(2, npos*s.KVDim()), optest.Rand(3, npos*s.KVDim())
		for i := range q {
			q[i] *= 3
		}
		plain := optest.SWA(q, k, v, 0, npos, s)
		optest.Check(t, "no options", swaOpts(q, k, v, 0, npos, s, ops.AttentionOpts{}, 0), plain, 1e-13)
		optest.Check(t, "Scale 1/√HeadDim", swaOpts(q, k, v, 0, npos, s, ops.AttentionOpts{Scale: float32(1 / math.Sqrt(float64(s.HeadDim)))}, 0), plain, 1e-13)
		optest.Check(t, "huge softcap", swaOpts(q, k, v, 0, npos, s, ops.AttentionOpts{Softcap: 1e6}, 0), plain, 1e-13)
		const lambda = 0.3
		qs := make([]float32, len(q))
		for i, x := range q {
			qs[i] = x * float32(lambda*math.Sqrt(float64(s.HeadDim)))
		}
		optest.Check(t, "scale", swaOpts(q, k, v, 0, npos, s, ops.AttentionOpts{Scale: lambda}, 0), optest.SWA(qs, k, v, 0, npos, s), 1e-12)
		mean := make([]float32, len(q))
		hd, group := s.HeadDim, s.Heads/s.KVHeads
		for pos := range npos {
			lo := 0
			if s.Window > 0 {
				lo = max(0, pos-s.Window+1)
			}
			for h := range s.Heads {
				for d := range hd {
					var sum float64
					for j := lo; j <= pos; j++ {
						sum += float64(v[j*s.KVDim()+h/group*hd+d])
					}
					mean[pos*s.QDim()+h*hd+d] = float32(sum / float64(pos-lo+1))
				}
			}
		}
		optest.Check(t, "tiny softcap", swaOpts(q, k, v, 0, npos, s, ops.AttentionOpts{Softcap: 1e-4}, 0), mean, 1e-6)
	}
}

// TestAttentionReferenceSinks ties swaOpts's sinks to optest.SWA: the key
// sets follow the rule on hand-checked cases; no sinks is plain SWA; sinks
// that cover the whole sequence make it full causal attention; and each
// query equals full attention over its own keys gathered into a history of
// their own.
func TestAttentionReferenceSinks(t *testing.T) {
	for _, c := range []struct {
		pos, w, n int
		want      []int
	}{
		{pos: 5, w: 3, n: 4, want: []int{0, 1, 2, 3, 4, 5}}, // the band starts at 3, inside the sinks
		{pos: 7, w: 3, n: 4, want: []int{0, 1, 2, 3, 5, 6, 7}},
		{pos: 9, w: 3, n: 2, want: []int{0, 1, 7, 8, 9}},
		{pos: 1, w: 3, n: 2, want: []int{0, 1}},
		{pos: 6, w: 1, n: 1, want: []int{0, 6}},
		{pos: 6, w: 4, n: 0, want: []int{3, 4, 5, 6}},
	} {
		assert.Equal(t, c.want, sinkKeys(c.pos, c.w, c.n), "position %d, W %d, %d sinks", c.pos, c.w, c.n)
	}
	s := optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 6, Window: 5}
	const npos = 31
	q, k, v := optest.Rand(1, npos*s.QDim()), optest.Rand(2, npos*s.KVDim()), optest.Rand(3, npos*s.KVDim())
	for i := range q {
		q[i] *= 3
	}
	none := ops.AttentionOpts{}
	optest.Check(t, "no sinks", swaOpts(q, k, v, 0, npos, s, none, 0), optest.SWA(q, k, v, 0, npos, s), 1e-13)
	full := s
	full.Window = 0
	optest.Check(t, "sinks over the whole sequence", swaOpts(q, k, v, 0, npos, s, none, npos), optest.SWA(q, k, v, 0, npos, full), 1e-13)
	for _, n := range []int{1, 3, 7} {
		got := swaOpts(q, k, v, 0, npos, s, none, n)
		for pos := range npos {
			keys := sinkKeys(pos, s.Window, n)
			var kg, vg []float32
			for _, j := range keys {
				kg = append(kg, k[j*s.KVDim():(j+1)*s.KVDim()]...)
				vg = append(vg, v[j*s.KVDim():(j+1)*s.KVDim()]...)
			}
			want := optest.SWA(q[pos*s.QDim():(pos+1)*s.QDim()], kg, vg, len(keys)-1, len(keys), full)
			optest.Check(t, fmt.Sprintf("%d sinks, position %d", n, pos), got[pos*s.QDim():(pos+1)*s.QDim()], want, 1e-13)
		}
	}
}

// sinkChunkings are the chunkings a ring of slots runs: decode first, then
// 2, 3 (which starts a chunk inside the sinks of 4), slots−1, slots, 7 and
// a cycle of slots, 1, 2; only sizes in [1, slots].
func sinkChunkings(slots int) [][]int {
	var cs [][]int
	for _, c := range [][]int{{1}, {2}, {3}, {slots - 1}, {slots}, {7}, {slots, 1, 2}} {
		ok := true
		for _, n := range c {
			ok = ok && n >= 1 && n <= slots
		}
		if ok && !slices.ContainsFunc(cs, func(d []int) bool { return slices.Equal(c, d) }) {
			cs = append(cs, c)
		}
	}
	return cs
}

// TestAttentionSinks runs rings with 1, 2 and 4 sinks beside windows of 1 to
// 8 keys over 37 positions, so that keys leave the band while the sinks stay:
// sinks fewer than, equal to and more than the window, rings of more slots
// than the window, head dims 8 (4-byte loads in the CPU layout) and 64
// (16-byte loads), and soft-capped scores. Every chunking must match the
// float64 reference and equal decoding one token at a time bit for bit,
// in both layouts, with f32 and f16 rings. The ring starts as NaN and a
// sink is never written to row sinks + p mod slots, so a sink read from
// there gets NaN or a later position's key.
func TestAttentionSinks(t *testing.T) {
	shape := func(hd, w int) optest.AttnShape {
		return optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: hd, Window: w}
	}
	cases := []struct {
		s            optest.AttnShape
		sinks, slots int // slots 0: the window
		opts         ops.AttentionOpts
		sinkQ        bool // the sinks are scored with sink queries of their own
	}{
		{s: shape(8, 3), sinks: 1},
		{s: shape(8, 5), sinks: 2, slots: 8},
		{s: shape(64, 8), sinks: 4},
		{s: shape(64, 4), sinks: 4},          // as many sinks as the window
		{s: shape(8, 3), sinks: 4, slots: 5}, // more sinks than the window
		{s: shape(8, 1), sinks: 2},           // the query itself and the sinks
		{s: shape(8, 6), sinks: 2, opts: ops.AttentionOpts{Scale: 0.3, Softcap: 50}},
		// Sink queries (cache positions): 16-byte and 4-byte loads, sinks
		// in a batch of their own and more sinks than a batch of keys.
		{s: shape(64, 8), sinks: 4, sinkQ: true},
		{s: shape(8, 3), sinks: 11, slots: 5, sinkQ: true},
		{s: shape(8, 6), sinks: 2, opts: ops.AttentionOpts{Softcap: 50}, sinkQ: true},
	}
	const npos = 37
	var stats worst
	variants(t, func(t *testing.T, e *env) {
		layouts(t, e, func(t *testing.T, e *env) {
			round := f16Rounding(t, e)
			for _, kv := range kvTypes {
				for i, c := range cases {
					name := fmt.Sprintf("%v/hd=%d/W=%d/sinks=%d/slots=%d/scale=%g/softcap=%g/sinkq=%v", kv, c.s.HeadDim, c.s.Window, c.sinks, c.slots, c.opts.Scale, c.opts.Softcap, c.sinkQ)
					t.Run(name, func(t *testing.T) {
						a := newAttnSeq(t, e, c.s, npos, uint64(500+i))
						a.sinks, a.slots, a.opts = c.sinks, c.slots, c.opts
						if c.sinkQ {
							a.withSinkQueries(t, e, uint64(600+i))
						}
						slots := max(c.slots, c.s.Window)
						var want, raw []float32
						if kv == ops.KVF16 {
							want, raw = reference(a, round, 0), reference(a, nil, 0)
						} else {
							want = reference(a, nil, 0)
						}
						var decode []float32
						for _, sizes := range sinkChunkings(slots) {
							got := a.run(t, e, kv, sizes, 0)
							label := fmt.Sprintf("chunks %v", sizes)
							optest.Check(t, label, got, want, nmseAttention)
							stats.note(fmt.Sprintf("%v ring with sinks vs reference on the same %v values", kv, kv), optest.NMSE(got, want))
							if raw != nil {
								optest.Check(t, label+" vs unrounded f32 reference", got, raw, nmseAttentionF16Raw)
							}
							if decode == nil {
								decode = got
								continue
							}
							requireBitEqual(t, label+" vs decode", got, decode, c.s.QDim())
						}
					})
				}
			}
		})
	})
	stats.log(t)
}

// TestStoreKVSinks writes chunks into a ring with sinks and reads it back:
// positions below the sinks land in their own rows once and stay there,
// later ones in row sinks + p mod slots, and rows no position has reached
// keep their NaN. Key element c of position p is p + c/32 (its value the
// negative), exact in f16, so a wrong row names the position it holds.
func TestStoreKVSinks(t *testing.T) {
	const npos = 23
	s := optest.AttnShape{Heads: 2, KVHeads: 2, HeadDim: 6, Window: 3}
	kd := s.KVDim()
	k, v := make([]float32, npos*kd), make([]float32, npos*kd)
	for p := range npos {
		for c := range kd {
			k[p*kd+c] = float32(p) + float32(c)/32
			v[p*kd+c] = -k[p*kd+c]
		}
	}
	variants(t, func(t *testing.T, e *env) {
		kb, vb := e.put(t, "k", k), e.put(t, "v", v)
		for _, kv := range kvTypes {
			for _, r := range []struct{ sinks, slots int }{{1, 3}, {4, 5}, {2, 7}} {
				t.Run(fmt.Sprintf("%v/sinks=%d/slots=%d", kv, r.sinks, r.slots), func(t *testing.T) {
					rows := r.sinks + r.slots
					words := int(ops.RingBytes(kv, rows, kd) / 4)
					nan := slices.Repeat([]float32{math.Float32frombits(0x7fff7fff)}, words) // an f16 NaN in both halves too
					rk, rv := e.put(t, "ring K", nan), e.put(t, "ring V", nan)
					ring := ops.Ring{K: rk, V: rv, Window: s.Window, Slots: r.slots, Sinks: r.sinks, KVDim: kd, Type: kv}
					held := slices.Repeat([]int{-1}, rows) // the position each row holds; -1: none
					for _, c := range [][2]int{{0, 2}, {2, 3}, {5, 1}, {6, 3}, {9, 2}, {11, 3}, {14, 3}, {17, 3}, {20, 3}} {
						pos0, n := c[0], c[1]
						sb := e.put(t, "step", []float32{math.Float32frombits(uint32(pos0))})
						e.run(t, func(p *ops.Plan) {
							p.StoreKV(ops.F32(kb).Sub(uint64(pos0*kd), uint64(n*kd)), ops.F32(vb).Sub(uint64(pos0*kd), uint64(n*kd)), ring, ops.F32(sb), n)
						})
						for p := pos0; p < pos0+n; p++ {
							row := p
							if p >= r.sinks {
								row = r.sinks + p%r.slots
							}
							held[row] = p
						}
						gotK, gotV := e.get(t, rk), e.get(t, rv)
						if kv == ops.KVF16 {
							gotK, gotV = unpackF16(gotK), unpackF16(gotV)
						}
						for row, p := range held {
							for c := range kd {
								gk, gv := gotK[row*kd+c], gotV[row*kd+c]
								if p < 0 {
									if !math.IsNaN(float64(gk)) || !math.IsNaN(float64(gv)) {
										t.Fatalf("after positions [%d, %d): row %d, element %d: %g, %g, want unwritten (NaN)", pos0, pos0+n, row, c, gk, gv)
									}
									continue
								}
								if gk != k[p*kd+c] || gv != v[p*kd+c] {
									t.Fatalf("after positions [%d, %d): row %d, element %d: %g, %g, want position %d's %g, %g",
										pos0, pos0+n, row, c, gk, gv, p, k[p*kd+c], v[p*kd+c])
								}
							}
						}
					}
				})
			}
		}
	})
}

// TestAttentionLongBand uses a window of 1000 (not a power of two, many
// tiles) over 2300 positions, chunked three ways, and checks the outputs
// against the reference and against each other bit for bit.
func TestAttentionLongBand(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds on lavapipe")
	}
	s := optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 64, Window: 1000}
	const npos = 2300
	e := newEnv(t, vk.DeviceOptions{}, 0)
	layouts(t, e, func(t *testing.T, e *env) {
		for _, kv := range kvTypes {
			t.Run(kv.String(), func(t *testing.T) {
				a := newAttnSeq(t, e, s, npos, 99)
				const from = 1950
				var round func([]float32) []float32
				if kv == ops.KVF16 {
					round = optest.RoundF16
				}
				want := reference(a, round, from)
				var first []float32
				for _, sizes := range [][]int{{1000}, {999, 1, 333}, {1000, 950, 1}} {
					got := a.run(t, e, kv, sizes, from)
					optest.Check(t, fmt.Sprintf("chunks %v", sizes), got, want, nmseAttention)
					if first == nil {
						first = got
					}
					requireBitEqual(t, fmt.Sprintf("chunks %v", sizes), got, first, s.QDim())
				}
			})
		}
	})
}

// TestAttentionLongWindow fills a 65536-slot ring with one StoreKV and then
// attends 40 positions past it, each over a full band of 65536 keys.
// lavapipe ends a shader after 65535 loop passes in all, so a kernel that
// loops once or more per key returns garbage here.
func TestAttentionLongWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds on lavapipe")
	}
	const w = 1 << 16
	s := optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 8, Window: w}
	e := newEnv(t, vk.DeviceOptions{}, 0)
	for _, kv := range kvTypes {
		t.Run(kv.String(), func(t *testing.T) {
			a := newAttnSeq(t, e, s, w+40, 5)
			var round func([]float32) []float32
			if kv == ops.KVF16 {
				round = optest.RoundF16
			}
			want := reference(a, round, w)
			decode := a.run(t, e, kv, append([]int{w}, slices.Repeat([]int{1}, 40)...), w)
			optest.Check(t, "decode", decode, want, nmseAttention)
			chunked := a.run(t, e, kv, []int{w, 17, 1, 22}, w)
			requireBitEqual(t, "chunks 17, 1, 22 vs decode", chunked, decode, s.QDim())
		})
	}
}

// TestAttentionSplitK compares the GPU layout's split-K attention with the
// same kernel in one pass (AttentionSplits: 1, no merge) on bands of 1,
// W−1 and W keys, and on full bands of 65536 keys, decoded and chunked, and
// with soft-capped scores on a local ring of more slots than its window and
// on a global ring (the merge finds the splits from the band), and with
// sinks, fewer and more than the window, which the splits cut together with
// the band (the merge finds them from the band and the sinks). The
// two sum in different orders, so they agree to f32 rounding, not bit for
// bit; each must match the float64 reference and be bit-exact across
// chunkings on its own.
func TestAttentionSplitK(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	cases := []struct {
		s        optest.AttnShape
		splits   int // forced on the split side; 0: the library's choice
		npos     int
		from     int
		prefill  int   // positions stored before the compared ones, in one chunk
		chunks   []int // the chunked run's chunk sizes after the prefill (cycled)
		wantMore bool  // the split side must use more than one split
		slots    int   // the ring's slots; 0: the window
		opts     ops.AttentionOpts
		sinks    int
		sinkQ    bool // the sinks are scored with sink queries of their own
	}{
		// Bands of 1 (position 0), W−1 (position W−2) and W (from W−1 on).
		{s: optest.AttnShape{Heads: 8, KVHeads: 2, HeadDim: 64, Window: 520}, npos: 523, chunks: []int{1}, wantMore: true},
		{s: optest.AttnShape{Heads: 8, KVHeads: 2, HeadDim: 64, Window: 520}, splits: 2, npos: 523, chunks: []int{333}, wantMore: true},
		{s: optest.AttnShape{Heads: 4, KVHeads: 4, HeadDim: 128, Window: 300}, splits: 3, npos: 310, chunks: []int{7}, wantMore: true},
		// Full bands of 65536 keys.
		{s: optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 8, Window: 1 << 16}, npos: 1<<16 + 6, from: 1 << 16, prefill: 1 << 16, chunks: []int{4, 2}, wantMore: true},
		// Soft-capped scores, a local ring of more slots than its window and
		// a global one.
		{s: optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 8, Window: 150}, slots: 200, opts: ops.AttentionOpts{Softcap: 50},
			splits: 3, npos: 260, chunks: []int{7, 200}, wantMore: true},
		{s: optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 8, Window: 0}, slots: 160, opts: ops.AttentionOpts{Scale: 0.5, Softcap: 3},
			splits: 3, npos: 160, chunks: []int{13}, wantMore: true},
		// Sinks beside the band: a few, more than the window, and the
		// library's choice of splits over band and sinks.
		{s: optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 8, Window: 150}, sinks: 4, splits: 3, npos: 260, chunks: []int{7, 150}, wantMore: true},
		{s: optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 8, Window: 100}, sinks: 200, splits: 3, npos: 330, chunks: []int{13, 100}, wantMore: true},
		// Sink queries: more sinks than a tile (sinks in two tiles, the
		// second shared with the band), and GQA heads sharing a workgroup.
		{s: optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 8, Window: 100}, sinks: 70, splits: 3, npos: 330, chunks: []int{13, 100}, wantMore: true, sinkQ: true},
		{s: optest.AttnShape{Heads: 8, KVHeads: 2, HeadDim: 64, Window: 40}, sinks: 4, npos: 90, chunks: []int{7, 40}, sinkQ: true},
		{s: optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 8, Window: 150}, sinks: 60, slots: 170, opts: ops.AttentionOpts{Softcap: 50},
			npos: 260, chunks: []int{170, 1}, wantMore: true},
	}
	for _, c := range cases {
		name := fmt.Sprintf("hd=%d/heads=%dx%d/W=%d/splits=%d", c.s.HeadDim, c.s.Heads, c.s.KVHeads, c.s.Window, c.splits)
		if c.slots > 0 {
			name += fmt.Sprintf("/slots=%d/opts=%+v", c.slots, c.opts)
		}
		if c.sinks > 0 {
			name += fmt.Sprintf("/sinks=%d/sinkq=%v", c.sinks, c.sinkQ)
		}
		band := c.s.Window + c.sinks // Ring.Keys
		if c.s.Window == 0 {
			band = c.slots
		}
		t.Run(name, func(t *testing.T) {
			one := newEnvOn(t, d, ops.Options{Layout: ops.ForceGPU, AttentionSplits: 1})
			split := newEnvOn(t, d, ops.Options{Layout: ops.ForceGPU, AttentionSplits: c.splits})
			if c.wantMore {
				require.Greater(t, split.lib.AttentionWorkgroups(band, c.s.Heads, c.s.KVHeads, c.s.HeadDim, band),
					one.lib.AttentionWorkgroups(band, c.s.Heads, c.s.KVHeads, c.s.HeadDim, band), "the split side has no more workgroups")
			}
			for _, kv := range kvTypes {
				a := newAttnSeq(t, split, c.s, c.npos, uint64(c.s.Window+c.splits+c.sinks))
				a.slots, a.opts, a.sinks = c.slots, c.opts, c.sinks
				if c.sinkQ {
					a.withSinkQueries(t, split, uint64(c.npos))
				}
				var round func([]float32) []float32
				if kv == ops.KVF16 {
					round = optest.RoundF16
				}
				want := reference(a, round, c.from)
				sizes, decode := c.chunks, []int{1}
				if c.prefill > 0 { // explicit lists: the prefill, then the rest
					sizes = append([]int{c.prefill}, c.chunks...)
					decode = append([]int{c.prefill}, slices.Repeat([]int{1}, c.npos-c.prefill)...)
				}
				gotOne := a.run(t, one, kv, sizes, c.from)
				gotSplit := a.run(t, split, kv, sizes, c.from)
				optest.Check(t, kv.String()+" one pass vs reference", gotOne, want, nmseAttention)
				optest.Check(t, kv.String()+" split-K vs reference", gotSplit, want, nmseAttention)
				optest.Check(t, kv.String()+" split-K vs one pass", gotSplit, gotOne, 1e-12)
				requireBitEqual(t, kv.String()+" split-K, chunks vs decode", gotSplit, a.run(t, split, kv, decode, c.from), c.s.QDim())
			}
		})
	}
}

// TestAttendFusesStore: Attend, attention with the store fused into its
// dispatch where no query of the chunk reads a row the chunk writes, gives
// exactly the outputs of Attention then StoreKV (later queries read what it
// stored, from rings that start as NaN), for decode steps of local rings
// with and without sinks (and sink queries), chunks up to slots − W + 1 of
// a ring with more slots than its window, and a global ring's decode steps
// beside chunks that keep the two ops,
// f32 and f16, in both layouts; and the fused step has one dispatch less.
func TestAttendFusesStore(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	for _, l := range []struct {
		name   string
		layout ops.LayoutChoice
	}{{"gpu", ops.ForceGPU}, {"cpu", ops.ForceCPU}} {
		t.Run(l.name, func(t *testing.T) {
			testAttendFusesStore(t, newEnvOn(t, d, ops.Options{Layout: l.layout}))
		})
	}
}

func testAttendFusesStore(t *testing.T, e *env) {
	cases := []struct {
		s            optest.AttnShape
		slots, sinks int
		sinkQ        bool
		chunks       []int
		npos         int
	}{
		{s: optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 8, Window: 5}, chunks: []int{1}, npos: 23},
		{s: optest.AttnShape{Heads: 8, KVHeads: 2, HeadDim: 64, Window: 6}, sinks: 2, sinkQ: true, chunks: []int{1}, npos: 20},
		{s: optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 8, Window: 5}, slots: 9, chunks: []int{5, 1, 3}, npos: 31},
		{s: optest.AttnShape{Heads: 4, KVHeads: 4, HeadDim: 16, Window: 0}, slots: 40, chunks: []int{7, 1, 13}, npos: 40},
	}
	for _, c := range cases {
		for _, kv := range kvTypes {
			t.Run(fmt.Sprintf("%v/W=%d/slots=%d/sinks=%d/chunks=%v", kv, c.s.Window, c.slots, c.sinks, c.chunks), func(t *testing.T) {
				a := newAttnSeq(t, e, c.s, c.npos, uint64(90+c.npos))
				a.slots, a.sinks = c.slots, c.sinks
				if c.sinkQ {
					a.withSinkQueries(t, e, uint64(91+c.npos))
				}
				apart := a.run(t, e, kv, c.chunks, 0)
				a.attend = true
				fused := a.run(t, e, kv, c.chunks, 0)
				requireBitEqual(t, "Attend vs Attention then StoreKV", fused, apart, c.s.QDim())
			})
		}
	}

	// One decode token: Attend records one dispatch less than the two ops,
	// and a chunk whose rows a query still reads gets the two ops.
	s := optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 8, Window: 4}
	ring := ops.Ring{K: e.alloc(t, "rk", 4*s.KVDim()), V: e.alloc(t, "rv", 4*s.KVDim()), Window: 4, Slots: 4, KVDim: s.KVDim(), Type: ops.KVF32}
	require.True(t, ring.StoreFuses(1))
	require.False(t, ring.StoreFuses(2), "a second token would overwrite the first query's oldest key")
	wide := ring
	wide.Slots = 7
	require.True(t, wide.StoreFuses(4))
	require.False(t, wide.StoreFuses(5))
	global := ring
	global.Window, global.Slots = 0, 64
	require.True(t, global.StoreFuses(1))
	require.False(t, global.StoreFuses(2), "a global ring's band is its slots")
	count := func(ntok int, fused bool) int {
		q, k := e.alloc(t, "q", ntok*s.QDim()), e.alloc(t, "k", ntok*s.KVDim())
		out, step := e.alloc(t, "out", ntok*s.QDim()), e.alloc(t, "step", 1)
		p := e.plan(t)
		if fused {
			p.Attend(ops.F32(q), ops.F32(k), ops.F32(k), ring, ops.F32(step), ops.F32(out), ntok, s.Heads, s.KVHeads, s.HeadDim, ops.AttentionOpts{})
		} else {
			p.Attention(ops.F32(q), ops.F32(k), ops.F32(k), ring, ops.F32(step), ops.F32(out), ntok, s.Heads, s.KVHeads, s.HeadDim, ops.AttentionOpts{})
			p.StoreKV(ops.F32(k), ops.F32(k), ring, ops.F32(step), ntok)
		}
		require.NoError(t, p.Err())
		return p.Seq.Dispatches()
	}
	require.Equal(t, count(1, false)-1, count(1, true), "decode: the store rides in the attention dispatch")
	require.Equal(t, count(3, false), count(3, true), "a chunk of 3 over a ring of its window keeps StoreKV apart")
}

// TestStoreKV writes chunks that wrap around the ring and compares the ring
// with the CPU simulation: f32 exactly, f16 as the device rounds. The slot
// of a position depends on the ring's slots only: a local ring of as many
// slots as its window, one of more, and a global ring (Window 0).
func TestStoreKV(t *testing.T) {
	variants(t, func(t *testing.T, e *env) {
		round := f16Rounding(t, e)
		for _, kv := range kvTypes {
			for _, r := range []struct{ window, slots int }{{5, 5}, {3, 7}, {0, 23}} {
				t.Run(fmt.Sprintf("%v/W=%d/slots=%d", kv, r.window, r.slots), func(t *testing.T) {
					const npos = 23
					s := optest.AttnShape{Heads: 2, KVHeads: 2, HeadDim: 6, Window: r.window}
					a := newAttnSeq(t, e, s, npos, 3)
					sim := optest.NewRing(optest.AttnShape{Heads: 2, KVHeads: 2, HeadDim: 6, Window: r.slots}, false) // slot p mod slots
					rk, rv := e.alloc(t, "ring K", int(ops.RingBytes(kv, r.slots, s.KVDim())/4)), e.alloc(t, "ring V", int(ops.RingBytes(kv, r.slots, s.KVDim())/4))
					ring := ops.Ring{K: rk, V: rv, Window: r.window, Slots: r.slots, KVDim: s.KVDim(), Type: kv}
					kd := s.KVDim()
					for _, c := range [][2]int{{0, 3}, {3, 5}, {8, 1}, {9, 4}, {13, 5}, {18, 5}} {
						pos0, n := c[0], c[1]
						sb := e.put(t, "step", []float32{math.Float32frombits(uint32(pos0))})
						k, v := ops.F32(a.kb).Sub(uint64(pos0*kd), uint64(n*kd)), ops.F32(a.vb).Sub(uint64(pos0*kd), uint64(n*kd))
						e.run(t, func(p *ops.Plan) { p.StoreKV(k, v, ring, ops.F32(sb), n) })
						sim.Store(a.k[pos0*kd:(pos0+n)*kd], a.v[pos0*kd:(pos0+n)*kd], pos0)
						gotK, gotV := e.get(t, rk), e.get(t, rv)
						wantK, wantV := slices.Clone(sim.K), slices.Clone(sim.V) // the NaN slots are zeroed below, not in sim
						if kv == ops.KVF16 {
							gotK, gotV = unpackF16(gotK), unpackF16(gotV)
							wantK, wantV = round(wantK), round(wantV)
						}
						// Compare the slots written so far (NaN in the simulation).
						for i := range wantK {
							if math.IsNaN(float64(wantK[i])) {
								gotK[i], gotV[i], wantK[i], wantV[i] = 0, 0, 0, 0
							}
						}
						requireBitEqual(t, fmt.Sprintf("ring K after positions [%d, %d)", pos0, pos0+n), gotK, wantK, kd)
						requireBitEqual(t, fmt.Sprintf("ring V after positions [%d, %d)", pos0, pos0+n), gotV, wantV, kd)
					}
				})
			}
		}
	})
}

// unpackF16 expands words holding two halves each (element 2c low).
func unpackF16(words []float32) []float32 {
	out := make([]float32, 0, 2*len(words))
	for _, w := range words {
		b := math.Float32bits(w)
		out = append(out, optest.FromF16(uint16(b)), optest.FromF16(uint16(b>>16)))
	}
	return out
}

// TestAttentionRingReference checks the CPU ring simulation (attend the chunk,
// then store it) against naive attention over the whole history.
func TestAttentionRingReference(t *testing.T) {
	for _, f16 := range []bool{false, true} {
		for _, w := range []int{1, 3, 8} {
			s := optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 6, Window: w}
			const npos = 41
			q, k, v := optest.Rand(1, npos*s.QDim()), optest.Rand(2, npos*s.KVDim()), optest.Rand(3, npos*s.KVDim())
			kr, vr := k, v
			if f16 {
				kr, vr = optest.RoundF16(k), optest.RoundF16(v)
			}
			want := optest.SWA(q, kr, vr, 0, npos, s)
			for _, c := range chunkSizes(w) {
				ring := optest.NewRing(s, f16)
				var got []float32
				for p0 := 0; p0 < npos; p0 += c {
					n := min(c, npos-p0)
					kc, vc := k[p0*s.KVDim():(p0+n)*s.KVDim()], v[p0*s.KVDim():(p0+n)*s.KVDim()]
					got = append(got, ring.Attend(q[p0*s.QDim():(p0+n)*s.QDim()], kc, vc, p0)...)
					ring.Store(kc, vc, p0)
				}
				assert.Equal(t, want, got, "f16 %v, W %d, chunk %d", f16, w, c)
			}
		}
	}
}

// TestF16Conversion checks ToF16 on values with known encodings.
func TestF16Conversion(t *testing.T) {
	for _, c := range []struct {
		f        float32
		rne, rtz uint16
	}{
		{0, 0, 0},
		{1, 0x3c00, 0x3c00},
		{-2, 0xc000, 0xc000},
		{65504, 0x7bff, 0x7bff},
		{65520, 0x7c00, 0x7bff}, // halfway to 2^16 rounds to Inf under RNE
		{1e9, 0x7c00, 0x7bff},
		{float32(math.Inf(-1)), 0xfc00, 0xfc00},
		{1 + 1.0/2048, 0x3c00, 0x3c00},                     // a tie, to even
		{1 + 3.0/2048, 0x3c02, 0x3c01},                     // a tie, to even (up)
		{float32(math.Ldexp(1, -24)), 0x0001, 0x0001},      // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000, 0x0000},      // a tie to zero
		{float32(math.Ldexp(1.5, -25)), 0x0001, 0x0000},    // above the tie
		{float32(math.Ldexp(1023, -24)), 0x03ff, 0x03ff},   // largest subnormal
		{float32(math.Ldexp(2047, -25)), 0x0400, 0x03ff},   // rounds up to the smallest normal
		{float32(-math.Ldexp(3, -24)), 0x8003, 0x8003},     // negative subnormal
		{float32(math.Ldexp(1, -14)), 0x0400, 0x0400},      // smallest normal
		{float32(math.Ldexp(1, -30)), 0x0000, 0x0000},      // underflow
		{float32(math.Ldexp(1, -126) / 4), 0x0000, 0x0000}, // an f32 subnormal
	} {
		assert.Equal(t, c.rne, optest.ToF16(c.f), "ToF16(%g)", c.f)
		assert.Equal(t, c.rtz, optest.ToF16RTZ(c.f), "ToF16RTZ(%g)", c.f)
		if c.rne&0x7c00 != 0x7c00 {
			assert.Equal(t, c.rne, optest.ToF16(optest.FromF16(c.rne)), "round trip %#04x", c.rne)
		}
	}
	assert.True(t, math.IsNaN(float64(optest.FromF16(optest.ToF16(float32(math.NaN()))))))
	for h := range uint16(0x7c00) { // every finite positive half round-trips
		require.Equal(t, h, optest.ToF16(optest.FromF16(h)))
		require.Equal(t, h, optest.ToF16RTZ(optest.FromF16(h)))
	}
}

func TestAttentionErrors(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	b := e.alloc(t, "b", 4096)
	small := e.alloc(t, "small", 4)
	all := ops.F32(b)
	rv := e.alloc(t, "rv", 64)
	ring := ops.Ring{K: b, V: rv, Window: 4, Slots: 4, KVDim: 16, Type: ops.KVF32}
	step := all.Sub(0, 1)
	// 2 tokens, 2 heads of 8, 2 KV heads: q and out 32, k and v 32 elements.
	q, k := all.Sub(0, 32), all.Sub(64, 32)
	none := ops.AttentionOpts{}
	require.NoError(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, ring, step, all.Sub(128, 32), 2, 2, 2, 8, none) }))
	require.NoError(t, e.try(t, func(p *ops.Plan) { p.StoreKV(k, k, ring, step, 2) }))
	global := ring
	global.Window = 0
	require.NoError(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, global, step, all.Sub(128, 32), 2, 2, 2, 8, none) }))
	require.NoError(t, e.try(t, func(p *ops.Plan) {
		p.Attention(q, k, k, ring, step, all.Sub(128, 32), 2, 2, 2, 8, ops.AttentionOpts{Scale: 0.1, Softcap: 30})
	}))

	big := ring
	big.Window, big.Slots = 1, 1
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, big, step, q, 2, 2, 2, 8, none) }), "longer than the ring's 1 slots")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.StoreKV(k, k, big, step, 2) }), "longer than the ring's 1 slots")
	for _, r := range []struct {
		window, slots int
		msg           string
	}{
		{5, 4, "ring window 5"},   // the window beyond the slots
		{-1, 4, "ring window -1"}, // a negative window
		{0, 0, "0 slots"},
		{1, -3, "-3 slots"},
	} {
		bad := ring
		bad.Window, bad.Slots = r.window, r.slots
		require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, bad, step, q, 2, 2, 2, 8, none) }), r.msg)
		require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.StoreKV(k, k, bad, step, 2) }), r.msg)
	}
	for _, o := range []ops.AttentionOpts{
		{Scale: -1}, {Softcap: -50}, {Scale: float32(math.NaN())}, {Softcap: float32(math.Inf(1))},
		{Scale: 1e-30, Softcap: 1e10}, // Scale/Softcap is below f32's normal range
	} {
		require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, ring, step, all.Sub(128, 32), 2, 2, 2, 8, o) }),
			"attention scale", "%+v", o)
	}
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, ring, step, q, 2, 2, 2, 9, none) }), "shape mismatch") // odd head dim
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, ring, step, q, 2, 3, 2, 8, none) }), "shape mismatch") // 3 heads on 2 KV heads
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, ring, step, q, 2, 2, 1, 8, none) }), "shape mismatch") // KV dim vs ring
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, ring, all.Sub(0, 2), q, 2, 2, 2, 8, none) }), "shape mismatch")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, all.Sub(0, 16), k, ring, step, q, 2, 2, 2, 8, none) }), "shape mismatch")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.StoreKV(k, all.Sub(0, 16), ring, step, 2) }), "shape mismatch")
	wide := ops.Ring{K: b, V: e.alloc(t, "wide V", 1024), Window: 1, Slots: 1, KVDim: 2 * 512, Type: ops.KVF32}
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) {
		p.Attention(all.Sub(0, 2*512), all.Sub(0, 512), all.Sub(0, 512), wide, step, all.Sub(0, 2*512), 1, 2, 1, 512, none)
	}), "shape mismatch") // head dim > 256
	tiny := ring
	tiny.K = small
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, tiny, step, q, 2, 2, 2, 8, none) }), "smaller than")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.StoreKV(k, k, tiny, step, 2) }), "smaller than")
	// Sinks: rows for them too, and never on a global ring.
	sinks := ring
	sinks.Sinks, sinks.V = 2, e.alloc(t, "rv with sinks", 96) // (2 + 4, 16) f32
	require.NoError(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, sinks, step, all.Sub(128, 32), 2, 2, 2, 8, none) }))
	require.NoError(t, e.try(t, func(p *ops.Plan) { p.StoreKV(k, k, sinks, step, 2) }))
	for _, r := range []struct {
		window, sinks int
		v             *vk.Buffer
		msg           string
	}{
		{0, 1, sinks.V, "global ring (window 0) with 1 sinks"},
		{4, -1, sinks.V, "-1 sinks"},
		{4, math.MaxInt32, sinks.V, "2147483647 sinks"},
		{4, 1, rv, "smaller than (1 sinks + 4 slots)"}, // V holds the 4 slots only
		{4, 3, sinks.V, "smaller than (3 sinks + 4 slots)"},
	} {
		bad := sinks
		bad.Window, bad.Sinks, bad.V = r.window, r.sinks, r.v
		require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, bad, step, all.Sub(128, 32), 2, 2, 2, 8, none) }), r.msg)
		require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.StoreKV(k, k, bad, step, 2) }), r.msg)
	}
	nilRing := ring
	nilRing.V = nil
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.StoreKV(k, k, nilRing, step, 2) }), "nil")
	same := ring
	same.V = b
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Attention(q, k, k, same, step, q, 2, 2, 2, 8, none) }), "same buffer")
}

// BenchmarkAttention measures one decode step's attention (ntok = 1) for
// Mistral-7B's shape at positions W and 32·W: the cost must be flat. GB/s
// counts the window's K and V read once (all heads share them), not the GQA
// re-reads from cache.
func BenchmarkAttention(b *testing.B) {
	const hd, heads, kvHeads, w = 128, 32, 8, 4096
	for _, kv := range []ops.KVType{ops.KVF16, ops.KVF32} {
		for _, pos := range []int{w, 32 * w} {
			b.Run(fmt.Sprintf("%v/hd=%d/heads=%dx%d/W=%d/pos=%d", kv, hd, heads, kvHeads, w, pos), func(b *testing.B) {
				e := newBenchEnv(b)
				kvDim := kvHeads * hd
				ringBytes := ops.RingBytes(kv, w, kvDim)
				words := int(ringBytes / 4)
				fill := func(seed uint64) []float32 {
					v := optest.Rand(seed, words)
					if kv == ops.KVF16 { // two valid halves per word
						for i, x := range v {
							v[i] = math.Float32frombits(uint32(optest.ToF16(x)) | uint32(optest.ToF16(-x/2))<<16)
						}
					}
					return v
				}
				rk, rv := e.put(b, "ring K", fill(1)), e.put(b, "ring V", fill(2))
				ring := ops.Ring{K: rk, V: rv, Window: w, Slots: w, KVDim: kvDim, Type: kv}
				const reps = 4
				q := e.put(b, "q", optest.Rand(3, reps*heads*hd))
				k := e.put(b, "k", optest.Rand(4, reps*kvDim))
				v := e.put(b, "v", optest.Rand(5, reps*kvDim))
				out := e.alloc(b, "out", reps*heads*hd)
				step := e.put(b, "step", []float32{math.Float32frombits(uint32(pos))})
				seq, err := e.d.NewSequence(vk.SequenceOptions{})
				require.NoError(b, err)
				defer seq.Close()
				require.NoError(b, seq.Begin())
				plan := e.lib.NewPlan(seq)
				defer plan.Close()
				for i := range uint64(reps) {
					qd, kd := uint64(heads*hd), uint64(kvDim)
					plan.Attention(ops.F32(q).Sub(i*qd, qd), ops.F32(k).Sub(i*kd, kd), ops.F32(v).Sub(i*kd, kd),
						ring, ops.F32(step), ops.F32(out).Sub(i*qd, qd), 1, heads, kvHeads, hd, ops.AttentionOpts{})
				}
				require.NoError(b, plan.Err())
				require.NoError(b, seq.End())
				require.NoError(b, seq.Run(time.Minute)) // lavapipe compiles a pipeline on first use
				b.ResetTimer()
				for b.Loop() {
					if err := seq.Run(time.Minute); err != nil {
						b.Fatal(err)
					}
				}
				calls := float64(reps) * float64(b.N)
				b.ReportMetric(b.Elapsed().Seconds()/calls*1e6, "µs/call")
				b.ReportMetric(2*float64(ringBytes)*calls/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}

// TestQKVViews: RoPEQK, AttentionQKV and StoreKVQKV on q|k|v rows (one
// product of the stacked Q, K and V weights) equal RoPE, Attention and
// StoreKV on separate q, k and v bit for bit, in both layouts, for a
// chunk and then a decode step over the ring it wrote.
func TestQKVViews(t *testing.T) {
	s := optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 8, Window: 8}
	const n, ropeDim = 5, 6
	qd, kd := s.QDim(), s.KVDim()
	opts := ops.AttentionOpts{Scale: 0.3} // passed through by both
	variants(t, func(t *testing.T, e *env) {
		layouts(t, e, func(t *testing.T, e *env) {
			for _, kv := range kvTypes {
				t.Run(kv.String(), func(t *testing.T) {
					q, k, v := optest.Rand(1, (n+1)*qd), optest.Rand(2, (n+1)*kd), optest.Rand(3, (n+1)*kd)
					var qkv []float32
					for r := range n + 1 {
						qkv = append(append(append(qkv, q[r*qd:(r+1)*qd]...), k[r*kd:(r+1)*kd]...), v[r*kd:(r+1)*kd]...)
					}
					rope := optest.Rand(4, (n+1)*ropeDim)
					type side struct {
						rk, rv, out *vk.Buffer
					}
					newSide := func() side {
						rb := ops.RingBytes(kv, s.Window, kd)
						rk, err := e.d.NewBuffer("rk", rb, vk.DeviceMemory)
						require.NoError(t, err)
						t.Cleanup(func() { rk.Close() })
						rv, err := e.d.NewBuffer("rv", rb, vk.DeviceMemory)
						require.NoError(t, err)
						t.Cleanup(func() { rv.Close() })
						return side{rk, rv, e.alloc(t, "out", (n+1)*qd)}
					}
					steps := e.put(t, "steps", []float32{0, math.Float32frombits(n)})
					rb := e.put(t, "rope", rope)
					sep, fused := newSide(), newSide()
					qb, kb, vb, qkvb := e.put(t, "q", q), e.put(t, "k", k), e.put(t, "v", v), e.put(t, "qkv", qkv)
					e.run(t, func(p *ops.Plan) {
						for i, c := range []struct{ r0, m int }{{0, n}, {n, 1}} {
							step := ops.F32(steps).Sub(uint64(i), 1)
							rs := ops.F32(rb).Sub(uint64(c.r0*ropeDim), uint64(c.m*ropeDim))
							ring := ops.Ring{K: sep.rk, V: sep.rv, Window: s.Window, Slots: s.Window, KVDim: kd, Type: kv}
							qv := ops.F32(qb).Sub(uint64(c.r0*qd), uint64(c.m*qd))
							kv2 := ops.F32(kb).Sub(uint64(c.r0*kd), uint64(c.m*kd))
							vv := ops.F32(vb).Sub(uint64(c.r0*kd), uint64(c.m*kd))
							p.RoPE(qv, rs, c.m, s.Heads, s.HeadDim, ropeDim, loader.RopePairwise)
							p.RoPE(kv2, rs, c.m, s.KVHeads, s.HeadDim, ropeDim, loader.RopePairwise)
							p.Attention(qv, kv2, vv, ring, step, ops.F32(sep.out).Sub(uint64(c.r0*qd), uint64(c.m*qd)), c.m, s.Heads, s.KVHeads, s.HeadDim, opts)
							p.StoreKV(kv2, vv, ring, step, c.m)

							ring.K, ring.V = fused.rk, fused.rv
							row := qd + 2*kd
							x := ops.F32(qkvb).Sub(uint64(c.r0*row), uint64(c.m*row))
							p.RoPEQK(x, rs, c.m, s.Heads, s.KVHeads, s.HeadDim, ropeDim, loader.RopePairwise)
							p.AttentionQKV(x, ring, step, ops.F32(fused.out).Sub(uint64(c.r0*qd), uint64(c.m*qd)), c.m, s.Heads, s.KVHeads, s.HeadDim, opts)
							p.StoreKVQKV(x, ring, step, c.m, s.Heads, s.KVHeads, s.HeadDim)
						}
					})
					requireBitEqual(t, "attention", e.get(t, fused.out), e.get(t, sep.out), qd)
					requireBitEqual(t, "ring K", e.get(t, fused.rk), e.get(t, sep.rk), kd)
					requireBitEqual(t, "ring V", e.get(t, fused.rv), e.get(t, sep.rv), kd)
					require.ErrorContains(t, e.try(t, func(p *ops.Plan) {
						p.AttentionQKV(ops.F32(qkvb).Sub(0, 7), ops.Ring{K: sep.rk, V: sep.rv, Window: s.Window, Slots: s.Window, KVDim: kd, Type: kv}, ops.F32(steps).Sub(0, 1), ops.F32(sep.out), 1, s.Heads, s.KVHeads, s.HeadDim, opts)
					}), "shape mismatch")
				})
			}
		})
	})
}

// TestAttentionFillsTheDevice: in the GPU layout one decode query of the
// 0.49B bench shape (32 query heads, 8 KV heads, head dim 64, W = 4096)
// at depth 4096 spreads over at least 128 workgroups per layer (issue
// target), and a query at depth 0 over one split.
func TestAttentionFillsTheDevice(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	e := newEnvOn(t, d, ops.Options{Layout: ops.ForceGPU, WG: 128})
	assert.GreaterOrEqual(t, e.lib.AttentionWorkgroups(4096, 32, 8, 64, 4096), 128)
	assert.Equal(t, 8, e.lib.AttentionWorkgroups(1, 32, 8, 64, 4096), "one split of 8 head groups")
	assert.Zero(t, newEnvOn(t, d, ops.Options{Layout: ops.ForceGPU, AttentionSplits: 1}).lib.AttentionScratch(512, 32, 8, 64, 4096))
}
