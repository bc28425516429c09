package ops

import (
	"fmt"
	"math"

	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// KVType is the element type of a KV ring.
type KVType int

const (
	// KVF16 stores keys and values as f16, packed in pairs in 32-bit words
	// (element 2c in the low half), so no 16-bit storage feature is needed.
	KVF16 KVType = iota
	// KVF32 stores keys and values as f32.
	KVF32
)

func (t KVType) String() string {
	switch t {
	case KVF16:
		return "f16"
	case KVF32:
		return "f32"
	}
	return fmt.Sprintf("KVType(%d)", int(t))
}

// ElemBytes is the size of one element of t.
func (t KVType) ElemBytes() int {
	if t == KVF32 {
		return 4
	}
	return 2
}

// Ring is one layer's KV cache: K and V are each (Rows, KVDim) of Type,
// row-major, Rows = Sinks + Slots. The K and V of position p < Sinks live in
// row p, a sink row that is written once and never overwritten; those of
// position p ≥ Sinks in row Sinks + (p mod Slots). The window that a query
// attends (Window) is kept apart from the positions retained (Slots), as a
// mixed model's local and global layers need.
//
// Sinks (StreamingLLM's attention sinks, design §12): with N = Sinks, the
// query at position i attends the keys j ≤ i with j < N or j ≥ i−Window+1,
// each once: the sinks [0, min(N, lo)), then the band lo … i, lo =
// max(0, i−Window+1). Only a local ring has sinks (Attention and StoreKV
// refuse Sinks > 0 with Window 0): a global ring attends every key already.
//
// Attention of a chunk runs before StoreKV of the same chunk, so the ring
// holds the sinks and the Slots positions before the chunk while the chunk
// attends them. Hence:
//   - a local ring (Window > 0) needs Slots ≥ Window, and a chunk of at most
//     Slots tokens then sees every key of its bands (the engine's choice:
//     Slots == Window for local layers, with chunks of at most Window tokens);
//   - a global ring (Window 0) is a linear cache: the caller keeps every
//     position below Slots. (Past that it attends the last Slots keys, as a
//     ring of window Slots would, and never reads an overwritten slot.)
type Ring struct {
	K, V   *vk.Buffer // (Sinks + Slots, KVDim) of Type, each
	Window int        // the query at position i attends to keys max(0, i−Window+1)…i; 0: every key from position 0 (a global layer)
	Slots  int        // positions retained past the sinks: position p ≥ Sinks lives in row Sinks + p mod Slots
	Sinks  int        // N ≥ 0: positions 0…N−1 stay in rows 0…N−1 and every query attends them beside its band; 0 with Window 0
	KVDim  int        // KV heads × head dim
	Type   KVType
}

// RingBytes is the size of one of K or V of a ring of rows positions
// (Ring.Rows: its sinks and slots).
func RingBytes(t KVType, rows, kvDim int) uint64 {
	return uint64(rows) * uint64(kvDim) * uint64(t.ElemBytes())
}

// Rows is the rows of each of K and V: Sinks + Slots.
func (r Ring) Rows() int { return r.Sinks + r.Slots }

// Band is the most keys of one query's band: Window, or Slots when Window
// == 0 (a global ring's band, every key from 0, is at most Slots long).
func (r Ring) Band() int {
	if r.Window == 0 {
		return r.Slots
	}
	return r.Window
}

// Keys is the most keys one query attends: its band and its sinks,
// Band() + Sinks. Library.AttentionScratch and AttentionWorkgroups take it
// as their band.
func (r Ring) Keys() int { return r.Band() + r.Sinks }

// MaxAttentionHeadDim is the largest head dimension Attention supports.
const MaxAttentionHeadDim = 256

// keysAligned reports whether every invocation's slice of every ring and
// chunk row starts on a 16-byte boundary in attention_keys.glsl (its VEC):
// a subgroup of s invocations splits a head's headDim dims into slices of
// ⌈headDim/s⌉; ring rows start at word rko (K) and rvo (V), chunk rows at
// element ko and vo, and a row is kvDim elements. The choice depends on the
// shapes and the binding offsets, never on the chunk size.
func keysAligned(t KVType, s, headDim, kvDim uint64, rko, rvo, ko, vo uint32) bool {
	dl := (headDim + s - 1) / s
	per := uint64(4) // ring elements per 16 bytes
	if t == KVF16 {
		per = 8
	}
	return headDim%s == 0 && dl%per == 0 && kvDim%per == 0 && rko%4 == 0 && rvo%4 == 0 &&
		dl%4 == 0 && ko%4 == 0 && vo%4 == 0
}

// maxKeysBand bounds a query's keys (Ring.Keys: band and sinks) for the
// CPU layout's kernels.
// lavapipe ends a shader after 65535 loop passes in all;
// attention_keys.glsl makes one per batch of 8 keys (2¹⁸ keys: 32768
// passes).
const maxKeysBand = 1 << 18

// maxKeysRegs bounds group × head dim for the CPU layout's kernels: each
// invocation keeps its slice of that many query values and as many
// numerators (2·128 values with lavapipe's subgroups of 8). Larger products
// run in the GPU layout.
const maxKeysRegs = 1024

// check validates r against a chunk of ntok tokens.
func (r Ring) check(ntok int) error {
	switch {
	case r.K == nil || r.V == nil:
		return fmt.Errorf("ring K or V is nil")
	case r.K == r.V:
		return fmt.Errorf("ring K and V are the same buffer %s", r.K.Name)
	case r.Type != KVF16 && r.Type != KVF32:
		return fmt.Errorf("ring type %v", r.Type)
	case r.Slots <= 0 || r.KVDim <= 0 || r.KVDim%2 != 0:
		return fmt.Errorf("ring of %d slots and KV dim %d (must be positive, the dim even)", r.Slots, r.KVDim)
	case r.Slots > math.MaxInt32 || r.KVDim > math.MaxInt32:
		return fmt.Errorf("ring of %d slots or KV dim %d too large", r.Slots, r.KVDim)
	case r.Window < 0 || r.Window > r.Slots:
		return fmt.Errorf("ring window %d (must be 0, global, or at most its %d slots)", r.Window, r.Slots)
	case r.Sinks < 0 || r.Sinks > math.MaxInt32-r.Slots:
		return fmt.Errorf("ring of %d sinks (must be ≥ 0, and sinks + slots %d fit 32 bits)", r.Sinks, r.Slots)
	case r.Sinks > 0 && r.Window == 0:
		return fmt.Errorf("a global ring (window 0) with %d sinks: it attends every key already; sinks need a window", r.Sinks)
	case ntok > r.Slots:
		return fmt.Errorf("a chunk of %d tokens is longer than the ring's %d slots", ntok, r.Slots)
	}
	n := RingBytes(r.Type, r.Rows(), r.KVDim)
	if r.K.Size < n || r.V.Size < n {
		return fmt.Errorf("ring buffers %s (%d bytes) and %s (%d bytes) are smaller than (%d sinks + %d slots)×%d %v (%d bytes)",
			r.K.Name, r.K.Size, r.V.Name, r.V.Size, r.Sinks, r.Slots, r.KVDim, r.Type, n)
	}
	return nil
}

// ringBindings binds all of the ring's K and V.
func (p *Plan) ringBindings(r Ring) (k, v vk.Range, ko, vo uint32, err error) {
	words := RingBytes(r.Type, r.Rows(), r.KVDim) / 4
	k, ko, err = p.binding(Tensor{Buf: r.K, Len: words}, 0, words, 4)
	if err != nil {
		return k, v, 0, 0, fmt.Errorf("ring K: %w", err)
	}
	v, vo, err = p.binding(Tensor{Buf: r.V, Len: words}, 0, words, 4)
	if err != nil {
		return k, v, 0, 0, fmt.Errorf("ring V: %w", err)
	}
	return k, v, ko, vo, nil
}

// AttentionOpts are Attention's score options; the zero value is scaled
// dot-product attention with scale 1/√headDim.
type AttentionOpts struct {
	Scale   float32 // multiplies q·k; 0: 1/√headDim
	Softcap float32 // scores s ← Softcap·tanh(s/Softcap) after Scale (Gemma 2); 0: none
	// SinkQuery, (ntok, nHeads·headDim) f32, is what scores a local ring's
	// sinks in place of q: each query rotated at its cache position
	// (RoPEQTo; StreamingLLM, RATIONALE.md "Sinks sit at their cache
	// positions"), while the band is scored with q. No buffer: q scores
	// the sinks too (a layer without RoPE). Unused without sinks.
	SinkQuery Tensor
}

// params are the kernels' scale and softcap push constants for o: scores are
// kept in base 2, so scale is log2(e)·Scale, or Scale/c with softcap
// log2(e)·c when soft-capped (the kernel computes softcap·tanh(q·k·scale)).
// The zero options give exactly the scale the kernels always had.
func (o AttentionOpts) params(headDim int) (scale, softcap float32, err error) {
	bad := func(x float32) bool { return x < 0 || math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) }
	if bad(o.Scale) || bad(o.Softcap) {
		return 0, 0, fmt.Errorf("attention scale %g and softcap %g (each must be finite and ≥ 0; 0 for the default)", o.Scale, o.Softcap)
	}
	if o.Scale == 0 && o.Softcap == 0 {
		return float32(math.Log2E / math.Sqrt(float64(headDim))), 0, nil
	}
	qk := 1 / math.Sqrt(float64(headDim))
	if o.Scale != 0 {
		qk = float64(o.Scale)
	}
	if o.Softcap == 0 {
		scale = float32(math.Log2E * qk)
	} else {
		scale, softcap = float32(qk/float64(o.Softcap)), float32(math.Log2E*float64(o.Softcap))
	}
	if !(scale >= 0x1p-126 && scale <= math.MaxFloat32) || softcap > math.MaxFloat32 {
		return 0, 0, fmt.Errorf("attention scale %g and softcap %g: their combined scale %g is not a normal f32", o.Scale, o.Softcap, scale)
	}
	return scale, softcap, nil
}

// Attention records out (ntok, nHeads*headDim) f32 = banded attention of
// queries q (ntok, nHeads*headDim) f32 at positions pos0+i, where pos0 =
// step[0] (u32, read on the GPU so a recorded step is reused across
// positions). Query i attends keys j in [max(0, pos0+i−W+1), pos0+i], W =
// ring.Window, or in [0, pos0+i] for a global ring (W = 0), and, with N =
// ring.Sinks, the sinks: the keys j < N before that band (see Ring), in that
// order, the sinks first, each key once. Keys j < pos0 come from the ring
// (row j for j < N, else row N + j mod ring.Slots), keys j ≥ pos0 from the
// chunk's own k, v (ntok, KVDim) f32 (RoPE already applied to k, with
// absolute positions), sinks or not. When ring.Type is
// KVF16, chunk values are rounded to f16 before use, so a chunk sees exactly
// the values it would read back from the ring. GQA: query head h uses KV
// head h/(nHeads/nKVHeads). A score is q·k·o.Scale, soft-capped to
// Softcap·tanh(s/Softcap) when o.Softcap ≠ 0, and the softmax over the band
// weighs the values.
//
// ntok must be at most ring.Slots (see Ring for the contract); headDim even
// and at most MaxAttentionHeadDim. Each query's result is bit-identical
// whatever the chunk it is computed in (the kernel's floating-point
// operations for a query depend only on its position, the ring's band and
// sinks, headDim, o and the library's layout and workgroup width; with no
// sinks they are those of a ring without them). Record StoreKV
// of the same chunk after it. Each of the ring's K and V, and the chunk's k
// and v, must fit one binding (maxStorageBufferRange); q and out are split
// as needed.
func (p *Plan) Attention(q, k, v Tensor, ring Ring, step Tensor, out Tensor, ntok, nHeads, nKVHeads, headDim int, o AttentionOpts) {
	if p.err == nil {
		p.fail(p.attention(q, k, v, ring, step, out, nil, ntok, nHeads, nKVHeads, headDim, nHeads*headDim, nKVHeads*headDim, o))
	}
}

// qkvViews are the q, k and v of a q|k|v activation (ntok, stride =
// (nHeads + 2·nKVHeads)·headDim), as views whose rows are stride apart.
func qkvViews(qkv Tensor, ntok, nHeads, nKVHeads, headDim int) (q, k, v Tensor, stride uint64, err error) {
	qd, kd := uint64(nHeads*headDim), uint64(nKVHeads*headDim)
	stride = qd + 2*kd
	if ntok <= 0 || nHeads <= 0 || nKVHeads <= 0 || headDim <= 0 || qkv.Len != uint64(ntok)*stride {
		return q, k, v, 0, fmt.Errorf("qkv %d elements for %d tokens of %d heads and 2×%d KV heads of %d: %w", qkv.Len, ntok, nHeads, nKVHeads, headDim, errShape)
	}
	span := uint64(ntok-1) * stride
	return qkv.Sub(0, span+qd), qkv.Sub(qd, span+kd), qkv.Sub(qd+kd, span+kd), stride, nil
}

// AttentionQKV is Attention of the q, k and v side by side in each row of
// qkv (ntok, (nHeads + 2·nKVHeads)·headDim), as one product of the
// stacked Q, K and V rows makes them.
func (p *Plan) AttentionQKV(qkv Tensor, ring Ring, step Tensor, out Tensor, ntok, nHeads, nKVHeads, headDim int, o AttentionOpts) {
	if p.err != nil {
		return
	}
	q, k, v, stride, err := qkvViews(qkv, ntok, nHeads, nKVHeads, headDim)
	if err != nil {
		p.fail(fmt.Errorf("ops: AttentionQKV: %w", err))
		return
	}
	p.fail(p.attention(q, k, v, ring, step, out, nil, ntok, nHeads, nKVHeads, headDim, int(stride), int(stride), o))
}

// Attend records Attention, then StoreKV of the same chunk: the step
// of design §3, attend, then write the chunk into the cache. Where the
// chunk's rows are rows that none of its queries reads (Ring.StoreFuses: a
// decode step) the kernel does both in one
// dispatch (swa_store*.comp, swa_keys_store*.comp), writing what StoreKV
// would, bit for bit; otherwise it is the two ops.
func (p *Plan) Attend(q, k, v Tensor, ring Ring, step Tensor, out Tensor, ntok, nHeads, nKVHeads, headDim int, o AttentionOpts) {
	if p.err == nil {
		kd := nKVHeads * headDim
		p.fail(p.attend(q, k, v, ring, step, out, ntok, nHeads, nKVHeads, headDim, nHeads*headDim, kd, o))
	}
}

// AttendQKV is Attend of the q, k and v side by side in each row of qkv,
// as AttentionQKV is of Attention.
func (p *Plan) AttendQKV(qkv Tensor, ring Ring, step Tensor, out Tensor, ntok, nHeads, nKVHeads, headDim int, o AttentionOpts) {
	if p.err != nil {
		return
	}
	q, k, v, stride, err := qkvViews(qkv, ntok, nHeads, nKVHeads, headDim)
	if err != nil {
		p.fail(fmt.Errorf("ops: AttendQKV: %w", err))
		return
	}
	p.fail(p.attend(q, k, v, ring, step, out, ntok, nHeads, nKVHeads, headDim, int(stride), int(stride), o))
}

func (p *Plan) attend(q, k, v Tensor, ring Ring, step Tensor, out Tensor, ntok, nHeads, nKVHeads, headDim, qStride, kvStride int, o AttentionOpts) error {
	if p.storeFuses(ring, ntok, nHeads, nKVHeads, headDim) {
		return p.attentionStore(q, k, v, ring, step, out, nil, true, ntok, nHeads, nKVHeads, headDim, qStride, kvStride, o)
	}
	if err := p.attention(q, k, v, ring, step, out, nil, ntok, nHeads, nKVHeads, headDim, qStride, kvStride, o); err != nil {
		return err
	}
	return p.storeKV(k, v, ring, step, ntok, kvStride)
}

// StoreFuses reports whether a chunk of ntok tokens can be written into
// the ring by the dispatch that attends it: none of the chunk's queries may
// read a ring row that the chunk writes. A chunk of n tokens overwrites
// the positions pos0 − Slots … pos0 + n − 1 − Slots, which the first
// query's band (from pos0 − Band() + 1) misses while n ≤ Slots − Band() + 1:
// one token, a decode step, when Slots is the window, and for a global ring
// (whose band is Slots, so that a ring used past its linear contract still
// never reads an overwritten row). A sink row is written only by the chunk
// holding its position, whose queries read it from the chunk.
func (r Ring) StoreFuses(ntok int) bool {
	return ntok >= 1 && ntok <= r.Slots-r.Band()+1
}

// storeFuses is StoreFuses for a valid shape (both layouts' kernels have
// the fused variant).
func (p *Plan) storeFuses(ring Ring, ntok, nHeads, nKVHeads, headDim int) bool {
	return ring.StoreFuses(ntok) && nKVHeads > 0 && nHeads > 0 && headDim > 0
}

// attention is Attention over q rows qStride and k, v rows kvStride
// elements apart, returning its error. With probs non-nil it runs the CPU
// layout's debug variant, which also writes the softmax probabilities to
// probs (see AttentionProbs).
func (p *Plan) attention(q, k, v Tensor, ring Ring, step Tensor, out Tensor, probs *Tensor, ntok, nHeads, nKVHeads, headDim, qStride, kvStride int, o AttentionOpts) error {
	return p.attentionStore(q, k, v, ring, step, out, probs, false, ntok, nHeads, nKVHeads, headDim, qStride, kvStride, o)
}

// attentionStore is attention that, with store, also writes the chunk into
// the ring in the same dispatch (the GPU layout's swa_store*; the caller
// checks storeFuses).
func (p *Plan) attentionStore(q, k, v Tensor, ring Ring, step Tensor, out Tensor, probs *Tensor, store bool, ntok, nHeads, nKVHeads, headDim, qStride, kvStride int, o AttentionOpts) error {
	if err := ring.check(ntok); err != nil {
		return fmt.Errorf("ops: Attention: %w", err)
	}
	if ntok <= 0 || nHeads <= 0 || nKVHeads <= 0 || nHeads%nKVHeads != 0 || headDim <= 0 || headDim%2 != 0 ||
		headDim > MaxAttentionHeadDim || ring.KVDim != nKVHeads*headDim {
		return fmt.Errorf("ops: Attention: %d tokens, %d heads, %d KV heads, head dim %d, ring KV dim %d: %w",
			ntok, nHeads, nKVHeads, headDim, ring.KVDim, errShape)
	}
	n, qDim, kvDim := uint64(ntok), uint64(nHeads*headDim), uint64(ring.KVDim)
	qs, kvs := uint64(qStride), uint64(kvStride)
	if qs < qDim || kvs < kvDim || q.Len != (n-1)*qs+qDim || out.Len != n*qDim || k.Len != (n-1)*kvs+kvDim || v.Len != (n-1)*kvs+kvDim || step.Len != 1 {
		return fmt.Errorf("ops: Attention: q %d, k %d, v %d, out %d, step %d elements for %d tokens of (%d, %d): %w",
			q.Len, k.Len, v.Len, out.Len, step.Len, ntok, qDim, kvDim, errShape)
	}
	sinkQ := o.SinkQuery.Buf != nil && ring.Sinks > 0 // the sinks have queries of their own
	if sinkQ && o.SinkQuery.Len != n*qDim {
		return fmt.Errorf("ops: Attention: sink queries %d elements for %d tokens of %d: %w", o.SinkQuery.Len, ntok, qDim, errShape)
	}

	scale, softcap, err := o.params(headDim)
	if err != nil {
		return fmt.Errorf("ops: Attention: %w", err)
	}
	kern, keys := shaders.SWAF32, shaders.SWAKeysF32
	if ring.Type == KVF16 {
		kern, keys = shaders.SWAF16, shaders.SWAKeysF16
	}
	if store {
		kern, keys = shaders.SWAStoreF32, shaders.SWAKeysStoreF32
		if ring.Type == KVF16 {
			kern, keys = shaders.SWAStoreF16, shaders.SWAKeysStoreF16
		}
	}
	group := nHeads / nKVHeads
	rk, rv, rko, rvo, err := p.ringBindings(ring)
	if err != nil {
		return fmt.Errorf("ops: Attention: %w", err)
	}
	sr, so, err := p.binding(step, 0, 1, 4)
	if err != nil {
		return fmt.Errorf("ops: Attention step: %w", err)
	}
	band := ring.Keys() // the most keys a query attends: band and sinks
	cpu := p.lib.keysKernel(nHeads, nKVHeads, headDim, band)
	debug := probs != nil
	if debug {
		if err := p.lib.probsCheck(*probs, ring, ntok, nHeads, nKVHeads, headDim); err != nil {
			return fmt.Errorf("ops: AttentionProbs: %w", err)
		}
		keys = shaders.SWAKeysProbsF32
		if ring.Type == KVF16 {
			keys = shaders.SWAKeysProbsF16
		}
	}
	if store && (debug || !ring.StoreFuses(ntok)) {
		return fmt.Errorf("ops: Attend: no fused store for %d tokens over %s in this kernel", ntok, ring.K.Name)
	}
	hg, splits := p.lib.attentionSplit(nHeads, nKVHeads, headDim, band)
	if cpu {
		hg, splits = uint32(group), 1
	}
	coop, coopOK := p.lib.attentionCoopMat(ring, ntok, headDim)
	if coopOK = coopOK && !store && !debug; coopOK {
		splits = 1 // a prefill chunk's queries fill the device in blocks of 32
	}
	// Queries are split into blocks that fit one binding (and the split
	// kernel's scratch); each block binds the chunk's k, v from row 0 (its
	// queries may attend every earlier row).
	block := p.maxRows(qs, 4)
	var part Tensor
	perRow := uint64(nHeads) * uint64(splits) * uint64(headDim+2) // partials per query
	if splits > 1 {
		if part, err = p.scratchFor(p.lib.AttentionScratch(ntok, nHeads, nKVHeads, headDim, band)); err != nil {
			return fmt.Errorf("ops: Attention: %w", err)
		}
		block = min(block, part.Len/perRow, p.maxRows(perRow, 4))
	}
	for i0 := uint64(0); i0 < n; i0 += block {
		m := min(block, n-i0)
		qr, qo, err := p.binding(q, i0*qs, (m-1)*qs+qDim, 4)
		if err != nil {
			return fmt.Errorf("ops: Attention q: %w", err)
		}
		or, oo, err := p.binding(out, i0*qDim, m*qDim, 4)
		if err != nil {
			return fmt.Errorf("ops: Attention out: %w", err)
		}
		kr, ko, err := p.binding(k, 0, (i0+m-1)*kvs+kvDim, 4)
		if err != nil {
			return fmt.Errorf("ops: Attention k: %w", err)
		}
		vr, vo, err := p.binding(v, 0, (i0+m-1)*kvs+kvDim, 4)
		if err != nil {
			return fmt.Errorf("ops: Attention v: %w", err)
		}
		sqr, sqo, sqs := qr, qo, qs // the sink queries: q itself unless the sinks have their own
		if sinkQ {
			if sqr, sqo, err = p.binding(o.SinkQuery, i0*qDim, m*qDim, 4); err != nil {
				return fmt.Errorf("ops: Attention sink queries: %w", err)
			}
			sqs = qDim
		}
		pc := shaders.AttentionParams{
			NHeads: uint32(nHeads), Group: uint32(group), HeadDim: uint32(headDim), KVDim: uint32(kvDim),
			Window: uint32(ring.Window), Slots: uint32(ring.Slots), Q0: uint32(i0), Rows: uint32(m),
			Scale: scale, Softcap: softcap,
			QOff: qo, KOff: ko, VOff: vo, RKOff: rko, RVOff: rvo, StepOff: so, OutOff: oo,
			QStride: uint32(qs), KVStride: uint32(kvs), Splits: splits, Sinks: uint32(ring.Sinks),
			SQOff: sqo, SQStride: uint32(sqs),
		}
		if coopOK {
			p.lib.record(Pick{Op: "attention", Type: ring.Type.String(), Table: kern.Name, Kernel: coop.Name,
				Reason: "a prefill chunk in tiles of 32 query rows on cooperative matrices: q, k, v and P in f16"})
			if err := p.dispatch(coop, (m+31)/32*uint64(nHeads), shaders.Push(&pc), qr, kr, vr, rk, rv, sr, or, sqr); err != nil {
				return err
			}
			continue
		}
		if cpu {
			// The CPU layout has its own kernel for the shapes it suits (see
			// maxKeysRegs and maxKeysBand); the library's layout implies
			// subgroup arithmetic. Soft-capping is its own variant.
			s, _, _ := p.lib.subgroupWidth()
			vec := uint32(0)
			if keysAligned(ring.Type, uint64(s), uint64(headDim), kvDim, rko, rvo, ko, vo) && kvs%4 == 0 {
				vec = 1
			}
			kk := keys.WithSpec(1, uint32(headDim)).WithSpec(2, uint32(group)).WithSpec(3, vec)
			if softcap != 0 {
				kk = kk.WithSpec(4, 1)
			}
			if sinkQ {
				kk = kk.WithSpec(5, 1)
			}
			if debug {
				// The probabilities of the block's queries, rows i0 … i0+m−1;
				// the CPU layout has no partials, so PartOff carries their offset.
				per := uint64(nHeads) * uint64(band)
				pr, po, err := p.binding(*probs, i0*per, m*per, 4)
				if err != nil {
					return fmt.Errorf("ops: AttentionProbs probabilities: %w", err)
				}
				pc.PartOff = po
				if err := p.dispatch(kk, m*uint64(nKVHeads), shaders.Push(&pc), qr, kr, vr, rk, rv, sr, or, sqr, pr); err != nil {
					return err
				}
				continue
			}
			p.lib.record(Pick{Op: "attention", Type: ring.Type.String(), Table: keys.Name, Kernel: kk.Name})
			if err := p.dispatch(kk, m*uint64(nKVHeads), shaders.Push(&pc), qr, kr, vr, rk, rv, sr, or, sqr); err != nil {
				return err
			}
			continue
		}
		kk := kern.WithSpec(1, hg)
		if sinkQ {
			kk = kk.WithSpec(2, 1)
		}
		table, reason := kern.Name, fmt.Sprintf("%d query heads per workgroup, %d splits", hg, splits)
		if store {
			reason += "; StoreKV fused (no query of the chunk reads a row it writes)"
		}
		if p.lib.layout == shaders.CPULayout {
			table = keys.Name
			reason = fmt.Sprintf("group × head dim %d or band and sinks %d beyond the CPU kernel's %d and %d; ", group*headDim, band, maxKeysRegs, maxKeysBand) + reason
		}
		p.lib.record(Pick{Op: "attention", Type: ring.Type.String(), Table: table, Kernel: kk.Name, Reason: reason})
		// The partials binding: the scratch when there are splits, else a
		// stand-in that the kernel does not write (out itself).
		pr, po := or, uint32(0)
		if splits > 1 {
			if pr, po, err = p.binding(part, 0, m*perRow, 4); err != nil {
				return fmt.Errorf("ops: Attention partials: %w", err)
			}
			pc.PartOff = po
		}
		if err := p.dispatch(kk, m*uint64(nHeads/int(hg))*uint64(splits), shaders.Push(&pc), qr, kr, vr, rk, rv, sr, or, sqr, pr); err != nil {
			return err
		}
		if splits == 1 {
			continue
		}
		mc := shaders.MergeParams{NHeads: uint32(nHeads), HeadDim: uint32(headDim), Window: uint32(ring.Window), Slots: uint32(ring.Slots),
			Q0: uint32(i0), Rows: uint32(m), Splits: splits, Tile: p.lib.WG, PartOff: po, StepOff: so, OutOff: oo, Sinks: uint32(ring.Sinks)}
		if err := p.dispatch(shaders.SWAMerge, m*uint64(nHeads), shaders.Push(&mc), pr, sr, or); err != nil {
			return err
		}
	}
	return nil
}

// attentionCoopMat is the cooperative-matrix attention kernel for a chunk
// of ntok queries over ring at head dim headDim, where the library takes
// cooperative matrices (Options.CoopMat) and the chunk suits the kernel: a
// prefill chunk (at least shaders.MatMulTileTokens queries), a ring
// without sinks, a head dim it takes and shared memory for it.
func (l *Library) attentionCoopMat(ring Ring, ntok, headDim int) (shaders.Kernel, bool) {
	if !l.coopmat || ntok < shaders.MatMulTileTokens || ring.Sinks != 0 || headDim <= 0 ||
		shaders.AttentionCoopMatSharedBytes(uint32(headDim)) > l.Device.Info.MaxComputeSharedMemorySize {
		return shaders.Kernel{}, false
	}
	return shaders.AttentionCoopMat(ring.Type == KVF16, uint32(headDim), l.coopmatAt)
}

// Split-K attention (the GPU layout's kernel, shaders/attention.glsl).
const (
	// maxHeadsPerGroup bounds the query heads a workgroup serves: each
	// thread keeps numerators for every one of them.
	maxHeadsPerGroup = 8
	// attentionWorkgroups is the workgroups one decode query should fill:
	// twice the SMs of a large GPU.
	attentionWorkgroups = 256
	// maxSplits bounds S; swa_merge.comp reads S partials per output.
	maxSplits = 64
	// attentionScratchBytes bounds the partial results of one block of
	// queries; longer chunks run in blocks.
	attentionScratchBytes = 16 << 20
)

// attentionSplit is the GPU layout's split of attention work for a model's
// shape: hg query heads per workgroup (the largest divisor of the GQA group
// within maxHeadsPerGroup whose shared memory fits the device) and S splits
// of the band (enough that one decode query fills attentionWorkgroups
// workgroups, at most one per tile of WG keys of the band and at most
// maxSplits). The band is a query's most keys, Ring.Keys (its sinks and
// band, which the splits cut as one sequence). Both depend on the shape, the
// band and the library only, never on the chunk, so that a query gets the same bits in every
// chunk; Options.AttentionSplits overrides S.
func (l *Library) attentionSplit(nHeads, nKVHeads, headDim, band int) (hg, splits uint32) {
	group := nHeads / max(nKVHeads, 1)
	// The shared memory of h heads, counting the sink queries' half of
	// q_sh whether or not the ring has sinks, so that h never depends on them.
	shared := func(h int) uint32 { return uint32(4 * h * (2*MaxAttentionHeadDim + 3*int(l.WG))) }
	hg = 1
	for h := min(group, maxHeadsPerGroup); h > 1; h-- {
		if group%h == 0 && shared(h) <= l.Device.Info.MaxComputeSharedMemorySize {
			hg = uint32(h)
			break
		}
	}
	if l.splits > 0 {
		return hg, uint32(l.splits)
	}
	tiles := (band + int(l.WG) - 1) / int(l.WG)
	per := nHeads / int(hg) // workgroups per split
	s := min(tiles, maxSplits, (attentionWorkgroups+per-1)/per)
	return hg, uint32(max(s, 1))
}

// keysKernel reports whether attention of this shape runs the CPU layout's
// kernel (attention_keys.glsl), which neither splits nor needs scratch:
// in the CPU layout, for the shapes within maxKeysRegs and bands (Ring.Keys)
// within maxKeysBand.
func (l *Library) keysKernel(nHeads, nKVHeads, headDim, band int) bool {
	return l.layout == shaders.CPULayout && nHeads/max(nKVHeads, 1)*headDim <= maxKeysRegs && band <= maxKeysBand
}

// AttentionScratch is the f32 elements of scratch memory that Attention
// uses for a chunk of ntok queries of this shape over a ring whose queries
// attend at most band keys (Ring.Keys: band and sinks) in this library's layout (0 when it needs none); give
// Plan.SetScratch at least that much to share one buffer between plans, or
// the plan allocates its own.
func (l *Library) AttentionScratch(ntok, nHeads, nKVHeads, headDim, band int) uint64 {
	if l.keysKernel(nHeads, nKVHeads, headDim, band) {
		return 0
	}
	_, s := l.attentionSplit(nHeads, nKVHeads, headDim, band)
	if s <= 1 {
		return 0
	}
	per := uint64(nHeads) * uint64(s) * uint64(headDim+2)
	rows := min(uint64(max(ntok, 1)), max(attentionScratchBytes/4/per, 1))
	return rows * per
}

// AttentionWorkgroups is the workgroups that do work for one query that
// attends n keys (n ≥ 1: its sinks and band) over a ring whose queries
// attend at most band keys (Ring.Keys): the
// splits that hold keys times the workgroups per split, in the GPU layout,
// or one per KV head in the CPU layout's kernel.
func (l *Library) AttentionWorkgroups(n, nHeads, nKVHeads, headDim, band int) int {
	if l.keysKernel(nHeads, nKVHeads, headDim, band) {
		return nKVHeads
	}
	hg, s := l.attentionSplit(nHeads, nKVHeads, headDim, band)
	n = min(max(n, 1), band)
	k := (n + int(s) - 1) / int(s)
	wg := int(l.WG)
	k = (k + wg - 1) / wg * wg
	return (n + k - 1) / k * (nHeads / int(hg))
}

// StoreKV records writing the chunk's k, v (ntok, KVDim) f32 into the ring
// rows of positions p = pos0+i, pos0 = step[0]: row p for p < ring.Sinks,
// else row Sinks + p mod ring.Slots (see Ring), converting them to ring.Type
// (ntok at most ring.Slots, so no two chunk rows share a ring row). Record it
// after the Attention of the same chunk: the recorder orders the two by their
// declared accesses to the ring.
func (p *Plan) StoreKV(k, v Tensor, ring Ring, step Tensor, ntok int) {
	if p.err == nil {
		p.fail(p.storeKV(k, v, ring, step, ntok, ring.KVDim))
	}
}

// StoreKVQKV is StoreKV of the k and v in each row of a q|k|v activation
// qkv (ntok, (nHeads + 2·nKVHeads)·headDim) (see AttentionQKV).
func (p *Plan) StoreKVQKV(qkv Tensor, ring Ring, step Tensor, ntok, nHeads, nKVHeads, headDim int) {
	if p.err != nil {
		return
	}
	_, k, v, stride, err := qkvViews(qkv, ntok, nHeads, nKVHeads, headDim)
	if err != nil {
		p.fail(fmt.Errorf("ops: StoreKVQKV: %w", err))
		return
	}
	p.fail(p.storeKV(k, v, ring, step, ntok, int(stride)))
}

// storeKV is StoreKV of k, v rows stride elements apart, returning its error.
func (p *Plan) storeKV(k, v Tensor, ring Ring, step Tensor, ntok, stride int) error {
	if err := ring.check(ntok); err != nil {
		return fmt.Errorf("ops: StoreKV: %w", err)
	}
	n, kvDim, kvs := uint64(ntok), uint64(ring.KVDim), uint64(stride)
	if ntok <= 0 || kvs < kvDim || k.Len != (n-1)*kvs+kvDim || v.Len != (n-1)*kvs+kvDim || step.Len != 1 {
		return fmt.Errorf("ops: StoreKV: k %d, v %d, step %d elements for %d tokens of %d: %w",
			k.Len, v.Len, step.Len, ntok, kvDim, errShape)
	}
	pipe := shaders.KVStoreF32
	if ring.Type == KVF16 {
		pipe = shaders.KVStoreF16
	}
	rk, rv, rko, rvo, err := p.ringBindings(ring)
	if err != nil {
		return fmt.Errorf("ops: StoreKV: %w", err)
	}
	sr, so, err := p.binding(step, 0, 1, 4)
	if err != nil {
		return fmt.Errorf("ops: StoreKV step: %w", err)
	}
	kr, ko, err := p.binding(k, 0, k.Len, 4)
	if err != nil {
		return fmt.Errorf("ops: StoreKV k: %w", err)
	}
	vr, vo, err := p.binding(v, 0, v.Len, 4)
	if err != nil {
		return fmt.Errorf("ops: StoreKV v: %w", err)
	}
	pc := shaders.KVStoreParams{Rows: uint32(n), KVDim: uint32(kvDim), Slots: uint32(ring.Slots),
		KOff: ko, VOff: vo, StepOff: so, RKOff: rko, RVOff: rvo, KVStride: uint32(kvs), Sinks: uint32(ring.Sinks)}
	wg := uint64(p.lib.WG)
	pairs := n * kvDim / 2
	return p.dispatch(pipe, (pairs+wg-1)/wg, shaders.Push(&pc), kr, vr, sr, rk, rv)
}
