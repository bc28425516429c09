package ops_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/vk"
)

// nmseProbs bounds the NMSE of the debug kernel's probabilities against
// float64 ones from the same (rounded) keys: f32 dot products, exp2 and
// sums, as nmseAttention for the outputs.
const nmseProbs = 1e-10

// refProbs is, for queries from … to−1 and each head, the float64 softmax
// over the query's keys (sinkKeys, in key order) of q·k/√HeadDim, laid out
// as AttentionProbs writes it: (to−from, Heads, keys), 0 past a query's keys.
func refProbs(q, k []float32, from, to int, s optest.AttnShape, sinks, keys int) []float32 {
	hd, qd, kd, group := s.HeadDim, s.QDim(), s.KVDim(), s.Heads/s.KVHeads
	scale := 1 / math.Sqrt(float64(hd))
	out := make([]float32, (to-from)*s.Heads*keys)
	for pos := from; pos < to; pos++ {
		js := sinkKeys(pos, s.Window, sinks)
		for h := range s.Heads {
			col := h / group * hd
			sc := make([]float64, len(js))
			m := math.Inf(-1)
			for u, j := range js {
				var dot float64
				for d := range hd {
					dot += float64(q[pos*qd+h*hd+d]) * float64(k[j*kd+col+d])
				}
				sc[u] = dot * scale
				m = max(m, sc[u])
			}
			var sum float64
			for u := range sc {
				sc[u] = math.Exp(sc[u] - m)
				sum += sc[u]
			}
			row := out[((pos-from)*s.Heads+h)*keys:]
			for u := range sc {
				row[u] = float32(sc[u] / sum)
			}
		}
	}
	return out
}

// TestAttentionProbs runs the CPU layout's debug kernel on an awkward shape
// (head dim 6, so 4-byte loads and a slice past the head; GQA 2:1) over a
// ring of 2 sinks and 7 slots for a window of 5, 23 positions in chunks of
// 3, 7 and 1 (so the ring wraps and chunks start inside and past the
// sinks), with f32 and f16 rings. Its probabilities must match float64
// ones, each row must sum to 1 within 1e-5 with exact zeros past the
// query's keys, and its output must equal the normal kernel's bit for bit.
func TestAttentionProbs(t *testing.T) {
	s := optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 6, Window: 5}
	const npos, sinks, slots = 23, 2, 7
	sizes := []int{3, 7, 1}
	variants(t, func(t *testing.T, e *env) {
		if !e.d.Features.SubgroupArithmetic {
			t.Skip("the CPU layout, which alone records probabilities, needs subgroup arithmetic")
		}
		e = newEnvOn(t, e.d, ops.Options{WG: e.wg, Layout: ops.ForceCPU})
		round := f16Rounding(t, e)
		for _, kv := range kvTypes {
			t.Run(kv.String(), func(t *testing.T) {
				a := newAttnSeq(t, e, s, npos, 900)
				ring, probs, got, normal := runProbs(t, e, a, kv, sinks, slots, sizes)
				for pos := range npos {
					assert.Equal(t, sinkKeys(pos, s.Window, sinks), ring.KeyPositions(pos), "KeyPositions(%d)", pos)
				}
				requireBitEqual(t, "debug kernel's output vs the normal kernel's", got, normal, s.QDim())
				k := a.k
				if kv == ops.KVF16 {
					k = round(k)
				}
				keys := ring.Keys()
				optest.Check(t, "probabilities", probs, refProbs(a.q, k, 0, npos, s, sinks, keys), nmseProbs)
				for pos := range npos {
					n := len(ring.KeyPositions(pos))
					for h := range s.Heads {
						row := probs[(pos*s.Heads+h)*keys : (pos*s.Heads+h+1)*keys]
						var sum float64
						for _, x := range row[:n] {
							sum += float64(x)
						}
						assert.InDelta(t, 1, sum, 1e-5, "position %d head %d: the probabilities sum to %v", pos, h, sum)
						for u, x := range row[n:] {
							assert.Zero(t, x, "position %d head %d: key %d past its %d keys", pos, h, n+u, n)
						}
					}
				}
			})
		}
	})
}

// runProbs runs a's positions through a ring of the given sinks and slots
// in chunks cycling through sizes: each chunk records AttentionProbs, the
// normal Attention into a second output, then StoreKV. Probabilities and
// outputs start as NaN. It returns the ring and the probabilities (npos,
// Heads, ring.Keys()), and both outputs (npos, QDim).
func runProbs(t *testing.T, e *env, a *attnSeq, kv ops.KVType, sinks, slots int, sizes []int) (ops.Ring, []float32, []float32, []float32) {
	s := a.s
	rk := e.alloc(t, "ring K", int(ops.RingBytes(kv, sinks+slots, s.KVDim())/4))
	rv := e.alloc(t, "ring V", int(ops.RingBytes(kv, sinks+slots, s.KVDim())/4))
	ring := ops.Ring{K: rk, V: rv, Window: s.Window, Slots: slots, Sinks: sinks, KVDim: s.KVDim(), Type: kv}
	var pos0s, chunks []int
	for pos, i := 0, 0; pos < a.npos; i++ {
		c := min(sizes[i%len(sizes)], a.npos-pos)
		pos0s, chunks = append(pos0s, pos), append(chunks, c)
		pos += c
	}
	steps := make([]byte, 4*len(pos0s))
	for i, p := range pos0s {
		binary.LittleEndian.PutUint32(steps[4*i:], uint32(p))
	}
	sb := e.alloc(t, "steps", len(pos0s))
	require.NoError(t, e.d.Upload(sb, 0, steps))
	keys := ring.Keys()
	qd, kd, per := uint64(s.QDim()), uint64(s.KVDim()), uint64(s.Heads*keys)
	out, normal := e.alloc(t, "out", a.npos*s.QDim()), e.alloc(t, "normal out", a.npos*s.QDim())
	probs := e.alloc(t, "probs", a.npos*int(per))

	seq, err := e.d.NewSequence(vk.SequenceOptions{OneTime: true})
	require.NoError(t, err)
	defer seq.Close()
	require.NoError(t, seq.Begin())
	plan := e.lib.NewPlan(seq)
	defer plan.Close()
	nan := math.Float32bits(float32(math.NaN())) | 0xffff
	for _, b := range []*vk.Buffer{rk, rv, out, normal, probs} {
		seq.Fill(b.All(), nan)
	}
	for i, c := range chunks {
		p0, n := uint64(pos0s[i]), uint64(c)
		step := ops.F32(sb).Sub(uint64(i), 1)
		q := ops.F32(a.qb).Sub(p0*qd, n*qd)
		k, v := ops.F32(a.kb).Sub(p0*kd, n*kd), ops.F32(a.vb).Sub(p0*kd, n*kd)
		plan.AttentionProbs(q, k, v, ring, step, ops.F32(out).Sub(p0*qd, n*qd), ops.F32(probs).Sub(p0*per, n*per), c, s.Heads, s.KVHeads, s.HeadDim, ops.AttentionOpts{})
		plan.Attention(q, k, v, ring, step, ops.F32(normal).Sub(p0*qd, n*qd), c, s.Heads, s.KVHeads, s.HeadDim, ops.AttentionOpts{})
		plan.StoreKV(k, v, ring, step, c)
		require.NoError(t, plan.Err(), "chunk %d", i)
	}
	require.NoError(t, seq.End())
	require.NoError(t, seq.Run(5*time.Minute))
	return ring, e.get(t, probs), e.get(t, out), e.get(t, normal)
}

// TestAttentionProbsErrors: the debug path refuses what it cannot record,
// with a clear error rather than a panic or the normal kernel's output.
func TestAttentionProbsErrors(t *testing.T) {
	variants(t, func(t *testing.T, e *env) {
		s := optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 4, Window: 3}
		q, kv, out := e.alloc(t, "q", s.QDim()), e.alloc(t, "kv", s.KVDim()), e.alloc(t, "out", s.QDim())
		rk, rv, step := e.alloc(t, "rk", 3*s.KVDim()), e.alloc(t, "rv", 3*s.KVDim()), e.alloc(t, "step", 1)
		ring := ops.Ring{K: rk, V: rv, Window: 3, Slots: 3, KVDim: s.KVDim(), Type: ops.KVF32}
		probs := e.alloc(t, "probs", s.Heads*ring.Keys())
		record := func(e *env, probs ops.Tensor) error {
			seq, err := e.d.NewSequence(vk.SequenceOptions{OneTime: true})
			require.NoError(t, err)
			defer seq.Close()
			require.NoError(t, seq.Begin())
			plan := e.lib.NewPlan(seq)
			defer plan.Close()
			plan.AttentionProbs(ops.F32(q), ops.F32(kv), ops.F32(kv), ring, ops.F32(step), ops.F32(out), probs, 1, s.Heads, s.KVHeads, s.HeadDim, ops.AttentionOpts{})
			return plan.Err()
		}
		gpu := newEnvOn(t, e.d, ops.Options{WG: e.wg, Layout: ops.ForceGPU})
		assert.ErrorContains(t, record(gpu, ops.F32(probs)), "only the CPU layout")
		if !e.d.Features.SubgroupArithmetic {
			return
		}
		cpu := newEnvOn(t, e.d, ops.Options{WG: e.wg, Layout: ops.ForceCPU})
		for _, c := range []struct {
			probs ops.Tensor
			want  string
		}{
			{ops.Tensor{}, "no buffer"},
			{ops.F32(probs).Sub(0, 5), fmt.Sprintf("probabilities 5 elements for 1 queries × 2 heads × %d keys", ring.Keys())},
		} {
			assert.ErrorContains(t, record(cpu, c.probs), c.want)
		}
	})
}
