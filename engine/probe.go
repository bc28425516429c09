package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/vk"
)

// AttentionMap is the attention that one layer's kernel computed over a
// prompt: for each query head and each query position, the softmax
// probabilities it gave the keys, by absolute key position.
type AttentionMap struct {
	Layer     int
	Heads     int // query heads: Config.NumHeads
	Positions int // the prompt's tokens, at positions 0 … Positions−1
	Window    int // the layer's W (0: global, every key from 0)
	Sinks     int // the layer's sinks: keys 0 … Sinks−1 beside every band
	// Probs[h][i][j] is the probability that head h of the query at
	// position i gave the key at position j: the kernel's own softmax
	// (ops.AttentionProbs), 0 for every j the query does not attend.
	Probs [][][]float32 // (heads, positions, positions)
}

// Attended reports whether the query at position i attends the key at
// position j in this layer: j ≤ i, and j is a sink or in i's band.
func (a *AttentionMap) Attended(i, j int) bool {
	if j > i || j < 0 {
		return false
	}
	return a.Window == 0 || j < a.Sinks || j > i-a.Window
}

// attentionProbe asks a step's recording (forward) to run the chosen
// layer's attention as ops.AttentionQKVProbs, writing the probabilities of
// the segment's n queries to probs (n, heads, keys) f32.
type attentionProbe struct {
	layer int
	probs ops.Tensor
}

// maxProbeBytes bounds the probabilities buffer of one probe step; longer
// prompts run in smaller chunks, which give the same bits (forward).
const maxProbeBytes = 64 << 20

// ProbeAttention starts a new sequence (Reset), prefills tokens with a
// recording whose layer runs the attention kernel's debug variant, and
// returns the probabilities that kernel used. Every other layer, and the
// layer's own output, are those of Prefill; the session is left after the
// prompt, so generation can continue from it. The debug kernel exists in
// the CPU layout only (ops.AttentionProbs): a model in the GPU layout is
// refused with an error that says so.
func (s *Session) ProbeAttention(ctx context.Context, tokens []int, layer int) (*AttentionMap, error) {
	if s.steps == nil {
		return nil, fmt.Errorf("engine: ProbeAttention: session is closed")
	}
	c := s.m.Config
	switch {
	case layer < 0 || layer >= c.NumLayers:
		return nil, fmt.Errorf("engine: ProbeAttention: layer %d of a %d-layer model (want 0…%d)", layer, c.NumLayers, c.NumLayers-1)
	case len(tokens) == 0:
		return nil, fmt.Errorf("engine: ProbeAttention: no tokens")
	case s.m.Context > 0 && len(tokens) > s.m.Context:
		return nil, fmt.Errorf("%w: %d tokens exceed the %d positions of the global layers' caches (raise the context)", ErrContextFull, len(tokens), s.m.Context)
	}
	for i, t := range tokens {
		if t < 0 || t >= c.VocabSize {
			return nil, fmt.Errorf("engine: ProbeAttention: token id %d at position %d is outside the vocabulary (%d)", t, i, c.VocabSize)
		}
	}
	ring := s.cache.Layer(layer)
	keys := ring.Keys()
	if keys > ops.MaxProbeKeys {
		return nil, fmt.Errorf("engine: ProbeAttention: layer %d attends up to %d keys; probabilities are recorded for at most %d (lower the context or the window)", layer, keys, ops.MaxProbeKeys)
	}
	perRow := c.NumHeads * keys // probabilities per query
	chunk := max(1, min(s.m.opts.Chunk, maxProbeBytes/4/perRow))
	size := uint64(4 * chunk * perRow)
	dev, err := s.m.dev.NewBuffer("attention probabilities", size, vk.DeviceMemory)
	if err != nil {
		return nil, fmt.Errorf("engine: ProbeAttention: %w", err)
	}
	defer dev.Close()
	host, err := s.m.dev.NewBuffer("attention probabilities (host)", size, vk.HostMemory)
	if err != nil {
		return nil, fmt.Errorf("engine: ProbeAttention: %w", err)
	}
	defer host.Close()

	n := len(tokens)
	a := &AttentionMap{Layer: layer, Heads: c.NumHeads, Positions: n, Window: ring.Window, Sinks: ring.Sinks,
		Probs: make([][][]float32, c.NumHeads)}
	for h := range a.Probs {
		a.Probs[h] = make([][]float32, n)
		for i := range a.Probs[h] {
			a.Probs[h][i] = make([]float32, n)
		}
	}
	s.Reset()
	for pos0 := 0; pos0 < n; pos0 += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := min(chunk, n-pos0)
		probe := &attentionProbe{layer: layer, probs: ops.F32(dev).Sub(0, uint64(m*perRow))}
		if err := s.probeStep(tokens[pos0:pos0+m], probe, host); err != nil {
			return nil, fmt.Errorf("engine: ProbeAttention: layer %d, positions %d…%d: %w", layer, pos0, pos0+m-1, err)
		}
		b := host.Mapped()
		for r := range m {
			pos := pos0 + r
			for u, j := range ring.KeyPositions(pos) {
				for h := range c.NumHeads {
					e := (r*c.NumHeads+h)*keys + u
					a.Probs[h][pos][j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*e:]))
				}
			}
		}
	}
	return a, nil
}

// probeStep records, runs and frees a one-time step over tokens at the
// session's position with probe set, copying the probabilities to host.
func (s *Session) probeStep(tokens []int, probe *attentionProbe, host *vk.Buffer) error {
	n := len(tokens)
	seq, err := s.m.dev.NewSequence(vk.SequenceOptions{OneTime: true})
	if err != nil {
		return err
	}
	defer seq.Close()
	if err := seq.Begin(); err != nil {
		return err
	}
	plan := s.m.lib.NewPlan(seq)
	defer plan.Close()
	plan.SetScratch(s.scratch)
	plan.SetQ8Scratch(s.q8)
	s.copyStepIn(seq, n)
	// No logits: the probabilities are the step's result.
	sh := stepShape{rows: n, segs: []segment{{n: n, cache: s.cache, pos: s.step, scratch: s.scratch, probe: probe}}}
	if err := s.m.forward(plan, &s.stepBufs, sh); err != nil {
		return err
	}
	bytes := 4 * probe.probs.Len
	seq.Copy(probe.probs.Buf.Slice(4*probe.probs.Off, bytes), host.Slice(0, bytes))
	if err := seq.End(); err != nil {
		return err
	}
	s.writeStep(tokens)
	if err := seq.Submit(); err != nil {
		return err
	}
	if err := seq.Wait(stepTimeout); err != nil {
		return err
	}
	s.pos += n
	return nil
}
