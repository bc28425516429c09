package ops

import (
	"fmt"

	"github.com/vkrun/vkrun/shaders"
)

// MaxProbeKeys bounds the keys (Ring.Keys: band and sinks) of a ring whose
// attention probabilities AttentionProbs records: the debug kernel makes a
// second pass of ⌈keys/subgroup⌉ loop passes per head after the batches,
// and lavapipe ends a shader after 65535 passes in all (maxKeysBand).
const MaxProbeKeys = 1 << 13

// AttentionProbs is Attention that also records the softmax probabilities
// its kernel used: probs (ntok, nHeads, ring.Keys()) f32, where element
// (i, h, u) is the probability that query i's head h gave its key u in key
// order (KeyPositions: the sinks, then the band) and 0 for u past its keys.
// They are exp2(score − max) / sum with the kernel's own final maximum and
// denominator, the ones it divided the output by, so each query's row sums
// to 1 up to f32 rounding. out is bit for bit Attention's.
//
// Only the CPU layout's kernel (attention_keys.glsl, compiled with PROBS:
// swa_keys_probs and swa_keys_f16_probs) has this debug path, so the
// library must be in the CPU layout and the shape within that kernel's
// bounds, and ring.Keys() at most MaxProbeKeys.
func (p *Plan) AttentionProbs(q, k, v Tensor, ring Ring, step, out, probs Tensor, ntok, nHeads, nKVHeads, headDim int, o AttentionOpts) {
	if p.err == nil {
		p.fail(p.attention(q, k, v, ring, step, out, &probs, ntok, nHeads, nKVHeads, headDim, nHeads*headDim, nKVHeads*headDim, o))
	}
}

// AttentionQKVProbs is AttentionProbs of a q|k|v activation, as
// AttentionQKV is of Attention.
func (p *Plan) AttentionQKVProbs(qkv Tensor, ring Ring, step, out, probs Tensor, ntok, nHeads, nKVHeads, headDim int, o AttentionOpts) {
	if p.err != nil {
		return
	}
	q, k, v, stride, err := qkvViews(qkv, ntok, nHeads, nKVHeads, headDim)
	if err != nil {
		p.fail(fmt.Errorf("ops: AttentionQKVProbs: %w", err))
		return
	}
	p.fail(p.attention(q, k, v, ring, step, out, &probs, ntok, nHeads, nKVHeads, headDim, int(stride), int(stride), o))
}

// probsCheck validates the debug path's preconditions.
func (l *Library) probsCheck(probs Tensor, ring Ring, ntok, nHeads, nKVHeads, headDim int) error {
	keys := ring.Keys()
	want := uint64(ntok) * uint64(nHeads) * uint64(keys)
	switch {
	case probs.Buf == nil:
		return fmt.Errorf("the probabilities tensor has no buffer")
	case l.layout != shaders.CPULayout:
		return fmt.Errorf("only the CPU layout's attention kernel records probabilities; this library is in the %v layout (use --layout cpu)", l.layout)
	case !l.keysKernel(nHeads, nKVHeads, headDim, keys):
		return fmt.Errorf("group × head dim %d is beyond the CPU layout kernel's %d, which alone records probabilities", nHeads/nKVHeads*headDim, maxKeysRegs)
	case keys > MaxProbeKeys:
		return fmt.Errorf("a ring of %d keys (band and sinks): probabilities are recorded for at most %d", keys, MaxProbeKeys)
	case probs.Len != want:
		return fmt.Errorf("probabilities %d elements for %d queries × %d heads × %d keys: %w", probs.Len, ntok, nHeads, keys, errShape)
	case 4*want > l.Device.Info.MaxStorageBufferRange-max(l.Device.Info.MinStorageBufferOffsetAlignment, 1):
		return fmt.Errorf("probabilities of %d bytes do not fit one binding (%d)", 4*want, l.Device.Info.MaxStorageBufferRange)
	}
	return nil
}

// KeyPositions is the positions of the keys that the query at position pos
// attends over r, in the key order of AttentionProbs's rows: the sinks
// 0 … min(Sinks, lo)−1, then the band lo … pos, lo = max(0, pos − Band() + 1).
func (r Ring) KeyPositions(pos int) []int {
	lo := max(0, pos-r.Band()+1)
	ns := min(r.Sinks, lo)
	keys := make([]int, 0, ns+pos-lo+1)
	for j := range ns {
		keys = append(keys, j)
	}
	for j := lo; j <= pos; j++ {
		keys = append(keys, j)
	}
	return keys
}
