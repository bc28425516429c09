package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/vk"
)

// ErrContextFull is returned when a model with global layers would run past
// their linear caches (Model.Context positions).
var ErrContextFull = errors.New("engine: context full")

// stepTimeout bounds one GPU step; a healthy device needs far less.
const stepTimeout = 5 * time.Minute

// Session is one sequence: its own KV cache (a ring of W slots per local
// layer, a linear cache of the context per global layer) and activations,
// on a shared Model. A Session is not safe for
// concurrent use; different sessions of one model are.
type Session struct {
	m   *Model
	pos int // the next position

	cache *KVCache
	bufs  []*vk.Buffer

	// Activations for up to chunk tokens, and the per-step values, in
	// device memory: a step's recording first copies the values from the
	// host's copy (stepHost), so that no kernel reads host memory, which a
	// discrete GPU would reach over PCIe. Greedy steps write the next id to
	// tokens[0].
	stepBufs
	step ops.Tensor // (1,) u32: pos0, the chunk's first position

	// Host memory: the step values the host writes before each submit
	// (step, tokens, rope as above, then one word for the greedy id read
	// back), and the logits read back.
	stepHost *vk.Buffer
	out      *vk.Buffer // (chunk, vocab) f32

	steps   map[stepKey]*recording
	clock   uint64                 // steps run, for recording eviction
	profile map[string]*KernelTime // by kernel name, with Options.Profile
	last    []float32              // logits returned by the last step (reused)
}

// output says what a step produces after the last layer.
type output int

const (
	lastLogits output = iota // logits of the last token only
	allLogits                // logits of every token of the chunk
	greedy                   // the argmax of the last token's logits, into tokens[0]
)

type stepKey struct {
	ntok int
	out  output
}

// recording is a recorded step, submitted again for every chunk of its shape.
type recording struct {
	seq  *vk.Sequence
	plan *ops.Plan
	used uint64 // the step count when last used, for eviction
}

// maxRecordings bounds the recorded step shapes a session keeps: prompts of
// many lengths would otherwise each leave a recording and its descriptor sets.
const maxRecordings = 8

// NewSession allocates a session's KV cache and buffers. Its device memory
// is fixed here and never grows, however long the sequence.
func (m *Model) NewSession() (*Session, error) {
	c := m.Config
	if need, free := m.KVBytes(), m.dev.FreeBytes(vk.DeviceMemory); need > free {
		ctx := "every layer a ring of its window"
		if m.Context > 0 {
			ctx = fmt.Sprintf("%d positions in the global layers", m.Context)
		}
		return nil, fmt.Errorf("engine: new session: the KV cache needs %d bytes (%s, %s) and %s has %d free: lower the context: %w",
			need, m.opts.KV, ctx, m.dev.Info.Name, free, vk.ErrOutOfDeviceMemory)
	}
	s := &Session{m: m, steps: map[stepKey]*recording{}}
	chunk := m.opts.Chunk
	kvDim := c.NumKVHeads * c.HeadDim
	var err error
	dev := func(name string, n int) ops.Tensor {
		if err != nil {
			return ops.Tensor{}
		}
		var b *vk.Buffer
		if b, err = m.dev.NewBuffer(name, uint64(4*n), vk.DeviceMemory); err == nil {
			s.bufs = append(s.bufs, b)
			return ops.F32(b)
		}
		return ops.Tensor{}
	}
	s.stepBufs = m.newActivations(dev, chunk, chunk)
	var partials uint64 // the most any layer's attention needs
	for _, lc := range m.Cache {
		partials = max(partials, m.lib.AttentionScratch(chunk, c.NumHeads, c.NumKVHeads, c.HeadDim, lc.band()))
	}
	if partials > 0 {
		s.scratch = dev("attention partials", int(partials))
	}
	if n := m.lib.Q8Scratch(chunk, m.matmulCols()); n > 0 {
		s.q8 = dev("q8 activations", int(n))
	}
	nRope := chunk * c.RopeDim // (chunk, ropeDim/2, 2) per table
	stepWords := 1 + chunk + len(m.ropes)*nRope
	all := dev("step", stepWords)
	s.step, s.tokens = all.Sub(0, 1), all.Sub(1, uint64(chunk))
	for t := range m.ropes {
		s.ropes = append(s.ropes, all.Sub(uint64(1+chunk+t*nRope), uint64(nRope)))
	}
	if err == nil {
		s.cache, err = newKVCache(m.dev, m.Cache, kvDim, m.opts.KV)
	}
	if err == nil {
		if s.stepHost, err = m.dev.NewBuffer("step (host)", uint64(4*(stepWords+1)), vk.HostMemory); err == nil {
			s.bufs = append(s.bufs, s.stepHost)
		}
	}
	if err == nil {
		if s.out, err = m.dev.NewBuffer("logits (host)", uint64(4*chunk*c.VocabSize), vk.HostMemory); err == nil {
			s.bufs = append(s.bufs, s.out)
		}
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("engine: new session: %w", err)
	}
	return s, nil
}

// Pos is the number of tokens the session has processed: the next position.
func (s *Session) Pos() int { return s.pos }

// Reset starts a new sequence at position 0. The cache needs no clearing: a
// query only reads slots of positions already written in this sequence.
func (s *Session) Reset() { s.pos = 0 }

// Cache is the session's KV cache.
func (s *Session) Cache() *KVCache { return s.cache }

// KVBytes is the size of the session's KV cache: Σ_l slots_l·kvHeads·headDim·2·sizeof(elem).
func (s *Session) KVBytes() uint64 {
	if s.cache == nil {
		return 0
	}
	return s.cache.Bytes()
}

// Close frees the session's device memory. Idempotent.
func (s *Session) Close() error {
	for _, r := range s.steps {
		r.seq.Close()
		r.plan.Close()
	}
	s.steps = nil
	for _, b := range s.bufs {
		b.Close()
	}
	s.bufs = nil
	if s.cache != nil {
		s.cache.Close()
	}
	return nil
}

// Prefill feeds tokens in chunks of at most Model.Chunk() and returns the
// logits after the last one. The slice is the session's and is valid until
// its next step. ctx is checked before every chunk: a cancelled
// prefill stops within one chunk, leaving the session at the last whole chunk.
func (s *Session) Prefill(ctx context.Context, tokens []int) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("engine: Prefill: no tokens")
	}
	var last []float32
	for len(tokens) > 0 {
		n := min(len(tokens), s.m.opts.Chunk)
		if err := s.run(ctx, tokens[:n], lastLogits); err != nil {
			return nil, err
		}
		tokens = tokens[n:]
		if len(tokens) == 0 {
			last = s.readLogits(0, s.last)
			s.last = last
		}
	}
	return last, nil
}

// PrefillAll is Prefill that returns the logits at every position, with
// chunks of at most chunk tokens (0: Model.Chunk()).
func (s *Session) PrefillAll(ctx context.Context, tokens []int, chunk int) ([][]float32, error) {
	if chunk <= 0 || chunk > s.m.opts.Chunk {
		chunk = s.m.opts.Chunk
	}
	var out [][]float32
	for len(tokens) > 0 {
		n := min(len(tokens), chunk)
		if err := s.run(ctx, tokens[:n], allLogits); err != nil {
			return out, err
		}
		for i := range n {
			out = append(out, s.readLogits(i, nil))
		}
		tokens = tokens[n:]
	}
	return out, nil
}

// Decode feeds one token and returns the logits for the next. The slice is
// the session's and is valid until its next step: no allocation per token.
func (s *Session) Decode(ctx context.Context, token int) ([]float32, error) {
	if err := s.run(ctx, []int{token}, lastLogits); err != nil {
		return nil, err
	}
	s.last = s.readLogits(0, s.last)
	return s.last, nil
}

// DecodeGreedy feeds one token and returns the most likely next token. The
// argmax runs on the GPU, so only the id crosses back to the host.
func (s *Session) DecodeGreedy(ctx context.Context, token int) (int, error) {
	if err := s.run(ctx, []int{token}, greedy); err != nil {
		return 0, err
	}
	return int(binary.LittleEndian.Uint32(s.stepHost.Mapped()[4*s.resultWord():])), nil
}

// readLogits copies position i's logits into dst (reallocated if too small).
func (s *Session) readLogits(i int, dst []float32) []float32 {
	return logitsRow(s.out.Mapped(), i, s.m.Config.VocabSize, dst)
}

// logitsRow decodes row i of the (rows, vocab) f32 logits mapped in out
// into dst, reusing it when it has room.
func logitsRow(out []byte, i, vocab int, dst []float32) []float32 {
	b := out[4*i*vocab : 4*(i+1)*vocab]
	if cap(dst) < vocab {
		dst = make([]float32, vocab)
	}
	dst = dst[:vocab]
	for j := range dst {
		dst[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
	}
	return dst
}

// run executes one step over tokens at positions pos…pos+len−1: it writes
// the step's values, submits the step's recording (made on first use), and
// waits for it.
func (s *Session) run(ctx context.Context, tokens []int, out output) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.steps == nil {
		return fmt.Errorf("engine: session is closed")
	}
	n := len(tokens)
	if n == 0 || n > s.m.opts.Chunk {
		return fmt.Errorf("engine: step of %d tokens (chunk size %d)", n, s.m.opts.Chunk)
	}
	if ctx := s.m.Context; ctx > 0 && s.pos+n > ctx {
		return fmt.Errorf("%w: %d + %d tokens exceed the %d positions of the global layers' caches (raise the context)", ErrContextFull, s.pos, n, ctx)
	}
	if s.pos+n > math.MaxUint32 {
		return fmt.Errorf("%w: position %d", ErrContextFull, s.pos+n)
	}
	vocab := s.m.Config.VocabSize
	for i, t := range tokens {
		if t < 0 || t >= vocab {
			return fmt.Errorf("engine: token id %d at position %d is outside the vocabulary (%d)", t, s.pos+i, vocab)
		}
	}
	rec, err := s.recording(n, out)
	if err != nil {
		return err
	}
	s.writeStep(tokens)
	if err := rec.seq.Submit(); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if err := rec.seq.Wait(stepTimeout); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	s.pos += n
	if s.m.opts.Profile {
		tim, err := rec.seq.Timings()
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		if s.profile == nil {
			s.profile = map[string]*KernelTime{}
		}
		for _, t := range tim {
			k := s.profile[t.Name]
			if k == nil {
				k = &KernelTime{Name: t.Name}
				s.profile[t.Name] = k
			}
			k.Calls++
			k.Total += t.Duration
		}
	}
	return nil
}

// KernelTime is the GPU time one kernel took over a session's steps.
type KernelTime struct {
	Name  string
	Calls int
	Total time.Duration
}

// Profile returns GPU time per kernel since the session began, most
// expensive first; empty unless the model was loaded with Options.Profile.
func (s *Session) Profile() []KernelTime {
	var out []KernelTime
	for _, k := range s.profile {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Total > out[j].Total })
	return out
}

// writeStep writes pos0, the token ids and the RoPE table for the step. The
// angles are computed in float64 on the host: GPU sin and cos lose accuracy
// for the large angles of late positions.
func (s *Session) writeStep(tokens []int) {
	h := s.stepHost.Mapped()
	put := func(elem uint64, v uint32) { binary.LittleEndian.PutUint32(h[4*elem:], v) }
	put(s.step.Off, uint32(s.pos))
	for i, t := range tokens {
		put(s.tokens.Off+uint64(i), uint32(t))
	}
	for t, table := range s.m.ropes {
		for i := range tokens {
			table.write(put, s.ropes[t].Off, i, s.pos+i)
		}
	}
}

// newActivations allocates, through dev, the activations of a step of
// rows tokens that makes the logits of outRows of them.
// matmulCols is the widest x of the model's products: the residual
// stream, the attention output or the FFN's hidden vector.
func (m *Model) matmulCols() int {
	c := m.Config
	return max(c.Dim, c.NumHeads*c.HeadDim, c.FFNDim)
}

func (m *Model) newActivations(dev func(name string, n int) ops.Tensor, rows, outRows int) stepBufs {
	c := m.Config
	qDim, kvDim := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	b := stepBufs{
		x:      dev("x", rows*c.Dim),
		xb:     dev("xb", rows*c.Dim),
		qkv:    dev("qkv", rows*(qDim+2*kvDim)),
		att:    dev("att", rows*qDim),
		hg:     dev("ffn gate and up", 2*rows*c.FFNDim),
		hu:     dev("ffn up", rows*c.FFNDim),
		logits: dev("logits", outRows*c.VocabSize),
	}
	if slices.ContainsFunc(m.sinkRope, func(t int) bool { return t >= 0 }) {
		b.sinkQ = dev("sink queries", rows*qDim)
	}
	return b
}

// write puts row's cos and sin of position pos's angles into a table that
// starts at element off, through put.
func (t ropeTable) write(put func(elem uint64, v uint32), off uint64, row, pos int) {
	half := len(t.freqs)
	if t.last > 0 {
		pos = min(pos, t.last)
	}
	p := float64(pos)
	if t.scale != 1 {
		p /= t.scale
	}
	for j, freq := range t.freqs {
		sin, cos := math.Sincos(p * freq)
		e := off + uint64(2*(row*half+j))
		put(e, math.Float32bits(float32(cos)))
		put(e+1, math.Float32bits(float32(sin)))
	}
}

// resultWord is the word of stepHost that a greedy step's id is copied to.
func (s *Session) resultWord() uint64 {
	n := s.step.Len + s.tokens.Len
	for _, r := range s.ropes {
		n += r.Len
	}
	return n
}

// hostRange is the bytes of stepHost that mirror elements [off, off+n) of
// the device step buffer.
func (s *Session) hostRange(off, n uint64) vk.Range { return s.stepHost.Slice(4*off, 4*n) }

// copyStepIn records the copy of an n-token step's values from host to
// device memory: pos0 and the token ids, then each RoPE table's rows.
func (s *Session) copyStepIn(seq *vk.Sequence, n int) {
	ids := s.step.Len + uint64(n)
	seq.Copy(s.hostRange(0, ids), s.step.Buf.Slice(4*s.step.Off, 4*ids))
	for _, rope := range s.ropes {
		if r := uint64(n * s.m.Config.RopeDim); r > 0 {
			seq.Copy(s.hostRange(rope.Off-s.step.Off, r), rope.Buf.Slice(4*rope.Off, 4*r))
		}
	}
}

// copyResultOut records the copy back to the host of what the step
// produced: the greedy id (4 bytes), or the logits of the last token or of
// every token.
func (s *Session) copyResultOut(seq *vk.Sequence, n int, out output) {
	vocab := uint64(s.m.Config.VocabSize)
	switch out {
	case greedy:
		seq.Copy(s.tokens.Buf.Slice(4*s.tokens.Off, 4), s.hostRange(s.resultWord(), 1))
	case allLogits:
		seq.Copy(s.logits.Buf.Slice(4*s.logits.Off, 4*uint64(n)*vocab), s.out.Slice(0, 4*uint64(n)*vocab))
	default:
		seq.Copy(s.logits.Buf.Slice(4*s.logits.Off, 4*vocab), s.out.Slice(0, 4*vocab))
	}
}

// recording returns the recorded step for n tokens and output out,
// recording it on first use. Position-dependent values live in the step
// buffer, so one recording serves every position.
func (s *Session) recording(n int, out output) (*recording, error) {
	key := stepKey{n, out}
	s.clock++
	if r, ok := s.steps[key]; ok {
		r.used = s.clock
		return r, nil
	}
	if len(s.steps) >= maxRecordings {
		var oldest stepKey
		var at uint64 = ^uint64(0)
		for k, r := range s.steps {
			if r.used < at {
				oldest, at = k, r.used
			}
		}
		r := s.steps[oldest]
		r.seq.Close() // waited for already: every step waits before returning
		r.plan.Close()
		delete(s.steps, oldest)
	}
	seq, err := s.m.dev.NewSequence(vk.SequenceOptions{Timestamps: s.m.opts.Profile})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if err := seq.Begin(); err != nil {
		seq.Close()
		return nil, fmt.Errorf("engine: %w", err)
	}
	plan := s.m.lib.NewPlan(seq)
	plan.SetScratch(s.scratch)
	plan.SetQ8Scratch(s.q8)
	s.copyStepIn(seq, n)
	err = s.forward(plan, n, out)
	if err == nil {
		s.copyResultOut(seq, n, out)
		err = seq.End()
	}
	if err != nil {
		plan.Close()
		seq.Close()
		return nil, fmt.Errorf("engine: recording a %d-token step: %w", n, err)
	}
	r := &recording{seq: seq, plan: plan, used: s.clock}
	s.steps[key] = r
	return r, nil
}

// StepStats describes the work of one recorded step: what its command
// buffer holds, and so what every submit of it costs in phases and bus
// traffic.
type StepStats struct {
	Tokens     int
	Dispatches int
	// Barriers are the pipeline barriers between its commands: the serial
	// phases, less one.
	Barriers int
	// HostBytes are the bytes that cross between host and device memory
	// per submit: the step values copied in, the result copied out, and any
	// host-memory range a kernel binds.
	HostBytes uint64
	// HostBound names the host-memory buffers that kernels bind: none,
	// when the step is device-resident.
	HostBound []string
}

// DecodeStats describes the session's one-token greedy decode step,
// recording it if it has not run yet. The step is the same at every
// position.
func (s *Session) DecodeStats() (StepStats, error) {
	if s.steps == nil {
		return StepStats{}, fmt.Errorf("engine: session is closed")
	}
	r, err := s.recording(1, greedy)
	if err != nil {
		return StepStats{}, err
	}
	return StepStats{Tokens: 1, Dispatches: r.seq.Dispatches(), Barriers: r.seq.Barriers(),
		HostBytes: r.seq.HostBytes(), HostBound: r.seq.HostBound()}, nil
}
