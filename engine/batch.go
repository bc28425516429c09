package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/vk"
)

// Batch runs several sequences of one model in shared steps: each slot is
// a sequence with its own KV cache and position, and one Step feeds any
// of them at once, in one submit. Every matrix product of a step runs
// over the rows of all its sequences, so the weights are read once per
// step however many sequences it carries; RoPE, attention and the cache
// store run per sequence. A row's result does not depend on the rows
// beside it: a sequence gives the same logits, bit for bit, in a Batch as
// alone in a Session. A Batch is not safe for concurrent use.
type Batch struct {
	m     *Model
	slots []batchSlot
	rows  int // the most tokens one step takes: Chunk + slots

	stepBufs
	pos  ops.Tensor // (slots,) u32: each segment's pos0, by segment
	ids  ops.Tensor // (slots,) u32: the greedy id of each output row
	bufs []*vk.Buffer

	stepHost *vk.Buffer // the host's copy of pos, tokens, ropes and ids
	out      *vk.Buffer // (slots, vocab) f32: the output rows' logits

	steps map[string]*recording
	clock uint64

	order      []int // the last step's segments in row order (indices into its argument)
	outputs    []int // the last step's output row of each of its segments, or −1
	haveLogits bool  // the last step read the logits back
}

type batchSlot struct {
	cache *KVCache
	pos   int
}

// Segment is one sequence's part of a Batch step: the tokens fed to slot
// Slot, and whether the step makes the next-token output (greedy id and,
// when asked for, logits) after its last token. A prompt's middle chunks
// need no output.
type Segment struct {
	Slot   int
	Tokens []int
	Output bool
}

// ErrBatchShape is a Step whose segments no step can take (see Step).
var ErrBatchShape = errors.New("engine: batch step shape")

// NewBatch allocates slots sequences' KV caches and the activations of a
// step of up to Chunk + slots tokens. Its device memory is fixed here.
func (m *Model) NewBatch(slots int) (*Batch, error) {
	if slots < 1 {
		return nil, fmt.Errorf("engine: new batch: %d slots", slots)
	}
	c := m.Config
	if need, free := uint64(slots)*m.KVBytes(), m.dev.FreeBytes(vk.DeviceMemory); need > free {
		return nil, fmt.Errorf("engine: new batch: %d KV caches need %d bytes and %s has %d free: fewer slots or a smaller context: %w",
			slots, need, m.dev.Info.Name, free, vk.ErrOutOfDeviceMemory)
	}
	b := &Batch{m: m, rows: m.opts.Chunk + slots, steps: map[string]*recording{}}
	rows := b.rows
	kvDim := c.NumKVHeads * c.HeadDim
	var err error
	dev := func(name string, n int) ops.Tensor {
		if err != nil {
			return ops.Tensor{}
		}
		var buf *vk.Buffer
		if buf, err = m.dev.NewBuffer(name, uint64(4*n), vk.DeviceMemory); err == nil {
			b.bufs = append(b.bufs, buf)
			return ops.F32(buf)
		}
		return ops.Tensor{}
	}
	b.stepBufs = m.newActivations(dev, rows, slots)
	// Each segment's attention has scratch of its own, so that the
	// sequences' attention dispatches need no barrier between them: one
	// prompt chunk and a token of every other slot at most.
	var partials uint64
	for _, lc := range m.Cache {
		one := m.lib.AttentionScratch(1, c.NumHeads, c.NumKVHeads, c.HeadDim, lc.band())
		chunk := m.lib.AttentionScratch(m.opts.Chunk, c.NumHeads, c.NumKVHeads, c.HeadDim, lc.band())
		partials = max(partials, chunk+uint64(slots-1)*one)
	}
	if partials > 0 {
		b.scratch = dev("attention partials", int(partials))
	}
	if n := m.lib.Q8Scratch(rows, m.matmulCols()); n > 0 {
		b.q8 = dev("q8 activations", int(n))
	}
	nRope := rows * c.RopeDim
	words := slots + rows + len(m.ropes)*nRope + slots
	all := dev("step", words)
	b.pos, b.tokens = all.Sub(0, uint64(slots)), all.Sub(uint64(slots), uint64(rows))
	for t := range m.ropes {
		b.ropes = append(b.ropes, all.Sub(uint64(slots+rows+t*nRope), uint64(nRope)))
	}
	b.ids = all.Sub(uint64(words-slots), uint64(slots))
	if err == nil {
		if b.stepHost, err = m.dev.NewBuffer("step (host)", uint64(4*words), vk.HostMemory); err == nil {
			b.bufs = append(b.bufs, b.stepHost)
		}
	}
	if err == nil {
		if b.out, err = m.dev.NewBuffer("logits (host)", uint64(4*slots*c.VocabSize), vk.HostMemory); err == nil {
			b.bufs = append(b.bufs, b.out)
		}
	}
	for range slots {
		if err != nil {
			break
		}
		var kv *KVCache
		if kv, err = newKVCache(m.dev, m.Cache, kvDim, m.opts.KV); err == nil {
			b.slots = append(b.slots, batchSlot{cache: kv})
		}
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("engine: new batch: %w", err)
	}
	return b, nil
}

// Slots is the number of sequences the batch holds.
func (b *Batch) Slots() int { return len(b.slots) }

// MaxTokens is the most tokens one step takes: a prompt chunk of at most
// Model.Chunk() and one token of every other slot.
func (b *Batch) MaxTokens() int { return b.rows }

// Pos is slot's next position.
func (b *Batch) Pos(slot int) int { return b.slots[slot].pos }

// Reset starts a new sequence at position 0 in slot.
func (b *Batch) Reset(slot int) { b.slots[slot].pos = 0 }

// KVBytes is the device memory of all the slots' KV caches.
func (b *Batch) KVBytes() uint64 { return uint64(len(b.slots)) * b.m.KVBytes() }

// Close frees the batch's device memory. Idempotent.
func (b *Batch) Close() error {
	for _, r := range b.steps {
		r.seq.Close()
		r.plan.Close()
	}
	b.steps = nil
	for _, s := range b.slots {
		s.cache.Close()
	}
	b.slots = nil
	for _, buf := range b.bufs {
		buf.Close()
	}
	b.bufs = nil
	return nil
}

// Step feeds each segment's tokens to its slot, all in one submit, and
// makes the output of the segments that ask for it: read it with ID and,
// when logits is true, Logits. Segments name distinct slots, each takes
// at most Model.Chunk() tokens, and together at most MaxTokens(); at most
// one segment with more than one token may ask for output (a prompt's last
// chunk), since the output rows must lie side by side. ctx is checked
// before the submit. A step that fails leaves every slot where it was.
func (b *Batch) Step(ctx context.Context, segs []Segment, logits bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.steps == nil {
		return fmt.Errorf("engine: batch is closed")
	}
	if len(segs) == 0 {
		return fmt.Errorf("%w: no segments", ErrBatchShape)
	}
	total, multiOut := 0, 0
	vocab := b.m.Config.VocabSize
	seen := make([]bool, len(b.slots))
	for _, sg := range segs {
		n := len(sg.Tokens)
		switch {
		case sg.Slot < 0 || sg.Slot >= len(b.slots):
			return fmt.Errorf("%w: slot %d of %d", ErrBatchShape, sg.Slot, len(b.slots))
		case seen[sg.Slot]:
			return fmt.Errorf("%w: slot %d twice", ErrBatchShape, sg.Slot)
		case n == 0 || n > b.m.opts.Chunk:
			return fmt.Errorf("%w: %d tokens for slot %d (chunk size %d)", ErrBatchShape, n, sg.Slot, b.m.opts.Chunk)
		}
		seen[sg.Slot] = true
		total += n
		if n > 1 && sg.Output {
			multiOut++
		}
		pos := b.slots[sg.Slot].pos
		if ctx := b.m.Context; ctx > 0 && pos+n > ctx {
			return fmt.Errorf("%w: slot %d: %d + %d tokens exceed the %d positions of the global layers' caches (raise the context)", ErrContextFull, sg.Slot, pos, n, ctx)
		}
		if pos+n > math.MaxUint32 {
			return fmt.Errorf("%w: slot %d: position %d", ErrContextFull, sg.Slot, pos+n)
		}
		for i, t := range sg.Tokens {
			if t < 0 || t >= vocab {
				return fmt.Errorf("engine: token id %d at position %d of slot %d is outside the vocabulary (%d)", t, pos+i, sg.Slot, vocab)
			}
		}
	}
	if total > b.rows {
		return fmt.Errorf("%w: %d tokens (at most %d)", ErrBatchShape, total, b.rows)
	}
	if multiOut > 1 {
		return fmt.Errorf("%w: %d segments of several tokens ask for output (at most one)", ErrBatchShape, multiOut)
	}

	// Rows: segments without output first, then the one of several tokens
	// with output, then the single tokens with output, so that the rows
	// that make output are the last rows, side by side.
	order := make([]int, len(segs))
	for i := range order {
		order[i] = i
	}
	rank := func(sg Segment) int {
		switch {
		case !sg.Output:
			return 0
		case len(sg.Tokens) > 1:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(order, func(i, j int) int { return rank(segs[i]) - rank(segs[j]) })
	sh := stepShape{rows: total}
	outputs := make([]int, len(segs))
	var key strings.Builder
	row := 0
	for k, i := range order {
		sg := segs[i]
		n := len(sg.Tokens)
		outputs[i] = -1
		if sg.Output {
			if sh.outRows == 0 {
				sh.outRow = row + n - 1
			}
			outputs[i] = sh.outRows
			sh.outRows++
		}
		sh.segs = append(sh.segs, segment{row: row, n: n, cache: b.slots[sg.Slot].cache, pos: b.pos.Sub(uint64(k), 1)})
		key.WriteString(strconv.Itoa(sg.Slot) + ":" + strconv.Itoa(n))
		if sg.Output {
			key.WriteString("o")
		}
		key.WriteString(",")
		row += n
	}
	if logits {
		key.WriteString("logits")
	}
	if sh.outRows > 0 {
		sh.argmax = b.ids.Sub(0, uint64(sh.outRows))
	}
	b.scratchFor(&sh)
	rec, err := b.recording(key.String(), sh, logits)
	if err != nil {
		return err
	}
	b.writeStep(segs, order)
	if err := rec.seq.Submit(); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if err := rec.seq.Wait(stepTimeout); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	for _, sg := range segs {
		b.slots[sg.Slot].pos += len(sg.Tokens)
	}
	b.order, b.outputs, b.haveLogits = order, outputs, logits && sh.outRows > 0
	return nil
}

// ID is the greedy next token (the argmax of the logits, taken on the
// device) after segment i of the last Step, which must have asked for
// output.
func (b *Batch) ID(i int) int {
	r := b.outputs[i]
	if r < 0 {
		return -1
	}
	return int(binary.LittleEndian.Uint32(b.stepHost.Mapped()[4*(b.ids.Off-b.pos.Off+uint64(r)):]))
}

// Logits copies the logits after segment i of the last Step into dst
// (reallocated if too small); the Step must have asked for output and for
// logits.
func (b *Batch) Logits(i int, dst []float32) []float32 {
	r := b.outputs[i]
	if r < 0 || !b.haveLogits {
		return nil
	}
	return logitsRow(b.out.Mapped(), r, b.m.Config.VocabSize, dst)
}

// scratchFor gives each segment its own part of the attention scratch.
func (b *Batch) scratchFor(sh *stepShape) {
	if b.scratch.Buf == nil {
		return
	}
	c := b.m.Config
	var off uint64
	for i, sg := range sh.segs {
		var need uint64
		for _, lc := range b.m.Cache {
			need = max(need, b.m.lib.AttentionScratch(sg.n, c.NumHeads, c.NumKVHeads, c.HeadDim, lc.band()))
		}
		if need == 0 {
			continue
		}
		if off+need > b.scratch.Len { // cannot happen within MaxTokens; share instead
			sh.segs[i].scratch = b.scratch
			continue
		}
		sh.segs[i].scratch = b.scratch.Sub(off, need)
		off += need
	}
}

// writeStep writes each segment's pos0, the token ids and the RoPE rows in
// row order.
func (b *Batch) writeStep(segs []Segment, order []int) {
	h := b.stepHost.Mapped()
	put := func(elem uint64, v uint32) { binary.LittleEndian.PutUint32(h[4*(elem-b.pos.Off):], v) }
	row := 0
	for k, i := range order {
		sg := segs[i]
		pos := b.slots[sg.Slot].pos
		put(b.pos.Off+uint64(k), uint32(pos))
		for j, t := range sg.Tokens {
			put(b.tokens.Off+uint64(row+j), uint32(t))
			for r, table := range b.m.ropes {
				table.write(put, b.ropes[r].Off, row+j, pos+j)
			}
		}
		row += len(sg.Tokens)
	}
}

// recording returns the recorded step of this shape, recording it on first
// use; the least recently used of more than maxBatchRecordings is freed.
func (b *Batch) recording(key string, sh stepShape, logits bool) (*recording, error) {
	b.clock++
	if r, ok := b.steps[key]; ok {
		r.used = b.clock
		return r, nil
	}
	if len(b.steps) >= maxBatchRecordings {
		var oldest string
		at := ^uint64(0)
		for k, r := range b.steps {
			if r.used < at {
				oldest, at = k, r.used
			}
		}
		r := b.steps[oldest]
		r.seq.Close() // waited for already: every step waits before returning
		r.plan.Close()
		delete(b.steps, oldest)
	}
	seq, err := b.m.dev.NewSequence(vk.SequenceOptions{})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if err := seq.Begin(); err != nil {
		seq.Close()
		return nil, fmt.Errorf("engine: %w", err)
	}
	plan := b.m.lib.NewPlan(seq)
	plan.SetScratch(b.scratch)
	plan.SetQ8Scratch(b.q8)
	b.copyIn(seq, sh)
	err = b.m.forward(plan, &b.stepBufs, sh)
	if err == nil {
		if sh.outRows > 0 {
			vocab := uint64(b.m.Config.VocabSize)
			ids := uint64(sh.outRows)
			seq.Copy(b.ids.Buf.Slice(4*b.ids.Off, 4*ids), b.stepHost.Slice(4*(b.ids.Off-b.pos.Off), 4*ids))
			if logits {
				seq.Copy(b.logits.Buf.Slice(4*b.logits.Off, 4*ids*vocab), b.out.Slice(0, 4*ids*vocab))
			}
		}
		err = seq.End()
	}
	if err != nil {
		plan.Close()
		seq.Close()
		return nil, fmt.Errorf("engine: recording a batch step (%s): %w", key, err)
	}
	r := &recording{seq: seq, plan: plan, used: b.clock}
	b.steps[key] = r
	return r, nil
}

// copyIn records the copy of the step's values from host to device memory.
func (b *Batch) copyIn(seq *vk.Sequence, sh stepShape) {
	host := func(off, n uint64) vk.Range { return b.stepHost.Slice(4*(off-b.pos.Off), 4*n) }
	seq.Copy(host(b.pos.Off, uint64(len(sh.segs))), b.pos.Buf.Slice(4*b.pos.Off, 4*uint64(len(sh.segs))))
	seq.Copy(host(b.tokens.Off, uint64(sh.rows)), b.tokens.Buf.Slice(4*b.tokens.Off, 4*uint64(sh.rows)))
	for _, rope := range b.ropes {
		if n := uint64(sh.rows * b.m.Config.RopeDim); n > 0 {
			seq.Copy(host(rope.Off, n), rope.Buf.Slice(4*rope.Off, 4*n))
		}
	}
}

// maxBatchRecordings bounds the step shapes a Batch keeps: a shape is the
// slots a step carries and their token counts, which change only as
// sequences join and leave.
const maxBatchRecordings = 32
