package vkrun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vkrun/vkrun/engine"
)

// Errors of the scheduler (Batch), for errors.Is.
var (
	// ErrQueueFull: every slot is busy and the queue holds MaxQueue
	// sequences already. Try again later.
	ErrQueueFull = errors.New("vkrun: every slot is busy and the queue is full")
	// ErrBatchClosed: the batch no longer accepts sequences.
	ErrBatchClosed = errors.New("vkrun: the batch is closed")
	// ErrInvalidRequest: the request itself is wrong (two prompts, a token
	// id outside the vocabulary, a prompt longer than the context, sampling
	// settings out of range, messages the chat template refuses). The error
	// says what; resending it unchanged fails again.
	ErrInvalidRequest = errors.New("vkrun: invalid request")
)

// BatchOptions configures a Batch.
type BatchOptions struct {
	// Slots is the most sequences that run at once (default 1). Each slot
	// holds a session, and so a KV cache (Model.KVBytes), from NewBatch to
	// Close.
	Slots int
	// MaxQueue is the most sequences that wait for a slot (default 8 ×
	// Slots); Submit refuses more with ErrQueueFull.
	MaxQueue int
	// Template renders Request.Messages. Default: the family of the
	// model's own chat template (ChatTemplateFor); a model without one
	// takes no Messages unless a template is given here.
	Template ChatTemplate
}

// FinishReason says why a sequence stopped, in OpenAI's words.
type FinishReason string

const (
	// FinishStop: the model ended its text (the end-of-sequence token or a
	// chat template's end-of-turn token), or a stop string was reached.
	FinishStop FinishReason = "stop"
	// FinishLength: the token limit (WithMaxTokens) or the end of the
	// context of a model with global layers.
	FinishLength FinishReason = "length"
)

// Request is one sequence for a Batch: a prompt given as text (Prompt), as
// token ids (PromptIDs), or as a chat (Messages, rendered with the batch's
// chat template and ended by its end-of-turn tokens), with Generate's
// options. At most one of the three may be set; with none, the sequence
// starts from BOS alone, as Session.Generate does with an empty prompt.
type Request struct {
	Prompt    string
	PromptIDs []int
	Messages  []Message
	Options   []GenerateOption
}

// Result is what a sequence did, known once its Tokens loop has ended.
type Result struct {
	// Finish is why it stopped; "" when it was cancelled, its consumer
	// left the loop early, or it failed.
	Finish FinishReason
	// PromptTokens is the ids fed before the first sampled token (BOS and
	// the chat template's control tokens included); Tokens the tokens
	// generated (Token.ID ≥ 0).
	PromptTokens, Tokens int
	// Queued is the time spent waiting for a slot; TTFT the time from
	// Submit to the first generated token; Duration from Submit to the end.
	Queued, TTFT, Duration time.Duration
}

// BatchStats is a snapshot of a Batch's work.
type BatchStats struct {
	Slots  int
	Active int // sequences holding a slot
	Queued int // sequences submitted and waiting for a slot
	// Served counts the sequences that ended with a finish reason,
	// Cancelled those stopped by their context or their consumer, Failed
	// those that ended with an error.
	Served, Cancelled, Failed int
	// PromptTokens and GeneratedTokens count the tokens fed and generated
	// over all sequences.
	PromptTokens, GeneratedTokens int
	// Steps counts the batched steps: one submit each, feeding one
	// token of every decoding sequence, a chunk of at most one prompt, and
	// the last token of any other prompt that has one left.
	Steps int
	// StepSizes[k] counts the steps that carried k sequences (len Slots+1):
	// the batch size per step.
	StepSizes []uint64
	// DeviceBytes and HostBytes are the memory vkrun holds on the model's
	// device (weights, the slots' KV caches, activations), by kind.
	DeviceBytes, HostBytes uint64
	// DeviceLost says that the device was lost: every later sequence fails
	// with ErrDeviceLost.
	DeviceLost bool
	// Closed says that Close was called: Submit refuses new sequences.
	Closed bool
}

// Batch schedules sequences of one model over a fixed set of slots, with
// continuous batching: each request waits in a bounded FIFO queue for a
// slot, joins the running sequences between two steps, and leaves its slot
// as soon as it finishes or is cancelled. A program uses it without HTTP
// (serve is one such program). All its methods are safe for concurrent use.
//
// One goroutine steps the model. Each step is one submit that feeds the
// next token of every decoding sequence, and a chunk of the oldest prompt
// still being read, so the weights are read once per step however many
// sequences run, and a long prompt delays the others' tokens by one chunk
// per step, never by its whole length. Every sequence has its own KV
// cache, and its results equal a lone Session's, bit for bit
// (engine.Batch). Tokens are handed to each sequence's consumer through a
// queue of its own, so a slow consumer holds up nobody.
type Batch struct {
	m        *Model
	tmpl     ChatTemplate
	maxQueue int
	eb       *engine.Batch // used by the scheduler goroutine only, after NewBatch

	mu      sync.Mutex
	free    []int       // idle slots, in descending order (the lowest is taken first)
	waiting []*Sequence // in Tokens, waiting for a slot, in Submit order (Sequence.order)
	orders  uint64      // Submits so far: the next Sequence.order
	active  []*Sequence // holding a slot, in the order they got it
	pending int         // submitted and holding no slot (a place in the queue)
	closed  bool
	abort   error      // set by the model's Close: every sequence ends with it
	stats   BatchStats // the counters; the gauges are filled in by Stats

	wake chan struct{} // (1) the scheduler has something to look at
	quit chan struct{} // closed after the drain: the scheduler exits
	done chan struct{} // closed when the scheduler has exited

	live      sync.WaitGroup // submitted sequences that have not ended
	closeOnce sync.Once
}

// NewBatch makes a scheduler over o.Slots sequences of m, each with a KV
// cache of its own (Model.KVBytes each) from NewBatch to Close.
func (m *Model) NewBatch(o BatchOptions) (*Batch, error) {
	switch {
	case o.Slots < 0:
		return nil, fmt.Errorf("vkrun: batch slots %d must not be negative", o.Slots)
	case o.MaxQueue < 0:
		return nil, fmt.Errorf("vkrun: batch queue %d must not be negative", o.MaxQueue)
	}
	if o.Slots == 0 {
		o.Slots = 1
	}
	if o.MaxQueue == 0 {
		o.MaxQueue = 8 * o.Slots
	}
	b := &Batch{m: m, tmpl: o.Template, maxQueue: o.MaxQueue,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if b.tmpl.Name() == "" {
		b.tmpl, _ = ChatTemplateFor(m.ChatTemplate())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrModelClosed
	}
	eb, err := m.em.NewBatch(o.Slots)
	if err != nil {
		return nil, fmt.Errorf("vkrun: batch of %d slots: %w", o.Slots, err)
	}
	b.eb = eb
	for i := o.Slots - 1; i >= 0; i-- {
		b.free = append(b.free, i) // slot 0 is taken first
	}
	b.stats.Slots = o.Slots
	b.stats.StepSizes = make([]uint64, o.Slots+1)
	m.batches[b] = struct{}{}
	go b.schedule()
	return b, nil
}

// Template is the chat template that renders Request.Messages (the zero
// ChatTemplate when there is none).
func (b *Batch) Template() ChatTemplate { return b.tmpl }

// Model is the model the batch runs.
func (b *Batch) Model() *Model { return b.m }

// Sequence is one submitted request: its place in the queue, then its slot.
// Range over Tokens once, or cancel the ctx given to Submit: until one of
// them ends it, the sequence keeps its place and Close waits for it.
type Sequence struct {
	b         *Batch
	ctx       context.Context
	unwatch   func() bool // stops the watch (abandon) that ends the sequence when ctx ends
	ids       []int       // the prompt tokens
	o         genOptions
	submitted time.Time
	order     uint64 // its place in Submit order: the queue is first come, first served by Submit, not by when Tokens begins

	// guarded by b.mu
	state  seqState
	result Result
	stop   bool          // cancelled, or its consumer left: the scheduler ends it before the next step
	out    []Token       // made and not yet taken by the consumer
	err    error         // why it ended, when not by a finish reason
	ready  chan struct{} // (1) out grew
	ended  chan struct{} // closed when the sequence has ended

	// the scheduler's
	slot      int
	feed      []int  // prompt tokens not yet fed
	next      int    // the token sampled last, fed by the next step
	nextBuf   [1]int // next as the next step's segment tokens, without an allocation per token
	gen       *genState
	sampler   *engine.Sampler
	gpuGreedy bool      // greedy without log-probabilities: the argmax is taken on the device
	logits    []float32 // scratch for the logits read back
}

type seqState uint8

const (
	seqQueued  seqState = iota // submitted, Tokens not called
	seqWaiting                 // in Tokens, waiting for a slot
	seqRunning                 // holding a slot
	seqDone
)

// Submit checks and encodes r and takes a place in the queue. It fails at
// once with ErrQueueFull, ErrBatchClosed, ErrDeviceLost, or an error that
// wraps ErrInvalidRequest (one that also wraps ErrContextFull for a prompt
// longer than the context of a model with global layers).
func (b *Batch) Submit(ctx context.Context, r Request) (*Sequence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := b.prepare(ctx, r)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return nil, ErrBatchClosed
	case b.m.dev.Lost():
		b.mu.Unlock()
		return nil, fmt.Errorf("vkrun: batch: %w", ErrDeviceLost)
	case b.pending >= len(b.free)+b.maxQueue:
		b.mu.Unlock()
		return nil, ErrQueueFull
	}
	b.pending++
	q.order = b.orders
	b.orders++
	b.live.Add(1)
	b.mu.Unlock()
	q.unwatch = context.AfterFunc(ctx, q.abandon)
	return q, nil
}

// Generate submits r and streams its tokens: Submit's errors come as the
// first and only item. See Sequence.Tokens.
func (b *Batch) Generate(ctx context.Context, r Request) iter.Seq2[Token, error] {
	return func(yield func(Token, error) bool) {
		q, err := b.Submit(ctx, r)
		if err != nil {
			yield(Token{}, err)
			return
		}
		for t, err := range q.Tokens() {
			if !yield(t, err) {
				return
			}
		}
	}
}

// prepare resolves r into the ids and options a slot's session runs.
func (b *Batch) prepare(ctx context.Context, r Request) (*Sequence, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
	}
	// The options are read here (this file is in the package): the
	// scheduler generates as Session.generate does (genState).
	o := genOptions{max: 256}
	for _, opt := range r.Options {
		if opt != nil {
			opt(&o)
		}
	}
	if o.max < 0 {
		return nil, invalid("max tokens %d must not be negative", o.max)
	}
	if err := o.sampling.Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	given := 0
	for _, set := range []bool{r.Prompt != "", r.PromptIDs != nil, r.Messages != nil, o.haveIDs} {
		if set {
			given++
		}
	}
	if given > 1 {
		return nil, invalid("give one of a prompt, prompt token ids and messages")
	}
	tok := b.m.Tokenizer()
	opts := slices.Clone(r.Options)
	var ids []int
	switch {
	case r.Messages != nil:
		if b.tmpl.Name() == "" {
			return nil, invalid("the model has no chat template vkrun knows; choose one (%s)", strings.Join(ChatTemplateNames(), ", "))
		}
		if tok == nil {
			return nil, invalid("the model has no tokenizer to render messages with")
		}
		var err error
		if ids, err = b.tmpl.Encode(tok, r.Messages, true); err != nil {
			return nil, invalid("%v", err)
		}
		opts = append(opts, WithStopTokens(b.tmpl.StopTokens(tok)...))
	case r.PromptIDs != nil, o.haveIDs:
		ids = slices.Clone(r.PromptIDs)
		if o.haveIDs {
			ids = slices.Clone(o.ids)
		}
	case tok == nil:
		return nil, invalid("the model has no tokenizer; give prompt token ids")
	default:
		ids = tok.EncodeWith(r.Prompt, tok.AddBOS())
	}
	if len(ids) == 0 {
		if tok == nil {
			return nil, invalid("no prompt token ids")
		}
		ids = []int{tok.BOS()} // as Session.Generate starts from an empty prompt
	}
	vocab := b.m.Config.VocabSize
	for i, id := range ids {
		if id < 0 || id >= vocab {
			return nil, invalid("prompt token %d is id %d, outside the vocabulary (%d)", i, id, vocab)
		}
	}
	if c := b.m.Context(); c > 0 && len(ids) > c {
		return nil, fmt.Errorf("%w: %w: the prompt has %d tokens and the context holds %d", ErrInvalidRequest, ErrContextFull, len(ids), c)
	}
	final := genOptions{max: 256}
	for _, opt := range opts {
		if opt != nil {
			opt(&final)
		}
	}
	return &Sequence{b: b, ctx: ctx, ids: ids, o: final, submitted: time.Now(),
		ready: make(chan struct{}, 1), ended: make(chan struct{})}, nil
}

var errRangedTwice = errors.New("vkrun: a sequence's Tokens may be ranged over once")

// abandon ends a sequence whose ctx ended before its Tokens loop began, or
// asks the scheduler to end it.
func (q *Sequence) abandon() {
	b := q.b
	b.mu.Lock()
	defer b.mu.Unlock()
	switch q.state {
	case seqQueued:
		b.pending--
		b.stats.Cancelled++
		q.result.Duration = time.Since(q.submitted)
		q.state = seqDone
		close(q.ended)
		b.live.Done()
	case seqWaiting, seqRunning:
		q.stop = true
		b.poke()
	}
}

// poke wakes the scheduler. Called with b.mu held or not.
func (b *Batch) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Tokens waits for a slot and streams the sequence's tokens, as
// Session.Generate does. Its text is the text a lone Session gives for the
// same prompt and options. Cancelling Submit's ctx, or leaving the loop,
// frees the slot within one step; a sequence cancelled in the queue leaves
// it at once. The end of the context is not an error: the loop ends and
// Result says FinishLength. Tokens may be ranged over once.
func (q *Sequence) Tokens() iter.Seq2[Token, error] {
	return func(yield func(Token, error) bool) {
		if err := q.begin(); err != nil {
			yield(Token{}, err)
			return
		}
		finished := false
		// Deferred: a consumer that leaves the loop, or panics in it,
		// still frees the slot, and Result is complete when Tokens returns.
		defer func() {
			if !finished {
				q.leave()
			}
		}()
		for {
			toks, done, err := q.take()
			for _, t := range toks {
				if !yield(t, nil) {
					return
				}
			}
			if done {
				finished = true
				if err != nil {
					yield(Token{}, err)
				}
				return
			}
		}
	}
}

// begin puts q in the queue for a slot.
func (q *Sequence) begin() error {
	b := q.b
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case q.state == seqDone && q.ctx.Err() != nil: // abandoned in the queue
		return q.ctx.Err()
	case q.state != seqQueued:
		return errRangedTwice
	case b.abort != nil:
		b.pending--
		b.end(q, b.abort)
		return b.abort
	}
	// From here ctx's end (abandon) asks the scheduler to end it.
	q.state = seqWaiting
	b.wait(q)
	b.poke()
	return nil
}

// wait puts q among the waiting sequences behind every one submitted
// before it, so that a consumer that begins its loop late keeps its place.
// b.mu is held.
func (b *Batch) wait(q *Sequence) {
	at, _ := slices.BinarySearchFunc(b.waiting, q.order, func(w *Sequence, o uint64) int { return cmp.Compare(w.order, o) })
	b.waiting = slices.Insert(b.waiting, at, q)
}

// take waits for tokens, or for the end: then done is true and err says
// why when it was not a finish reason.
func (q *Sequence) take() (toks []Token, done bool, err error) {
	b := q.b
	for {
		if q.ctx.Err() != nil {
			// Cancelled: no token made after the cancel is handed out,
			// unless the sequence finished first.
			q.leave()
			b.mu.Lock()
			if q.result.Finish == "" {
				q.out = nil
				err = q.err
				if err == nil {
					err = q.ctx.Err()
				}
				b.mu.Unlock()
				return nil, true, err
			}
			b.mu.Unlock()
		}
		b.mu.Lock()
		switch {
		case len(q.out) > 0:
			toks, q.out = q.out, nil
			b.mu.Unlock()
			return toks, false, nil
		case q.state == seqDone:
			err = q.err
			b.mu.Unlock()
			return nil, true, err
		}
		b.mu.Unlock()
		select {
		case <-q.ready:
		case <-q.ended:
		}
	}
}

// leave asks the scheduler to end q, whose consumer left, and waits until
// it has: at most one step.
func (q *Sequence) leave() {
	b := q.b
	b.mu.Lock()
	if q.state != seqDone {
		q.stop = true
		b.poke()
	}
	b.mu.Unlock()
	<-q.ended
}

// Result is what the sequence did; complete once its Tokens loop has ended.
func (q *Sequence) Result() Result {
	q.b.mu.Lock()
	defer q.b.mu.Unlock()
	return q.result
}

// PromptTokens is the number of ids the sequence feeds before it samples.
func (q *Sequence) PromptTokens() int { return len(q.ids) }

// schedule is the scheduler goroutine: it ends what must end, gives free
// slots to waiting sequences, and runs one step over every running
// sequence, until Close has drained the batch.
func (b *Batch) schedule() {
	defer close(b.done)
	for {
		b.mu.Lock()
		b.reap()
		if b.abort != nil { // the model is closing: every sequence has ended
			b.mu.Unlock()
			return
		}
		b.admit()
		run := slices.Clone(b.active)
		b.mu.Unlock()
		if len(run) == 0 {
			select {
			case <-b.wake:
				// Woken from idle by the first of a burst of sequences
				// (clients that submit together): let the goroutines that
				// are ready to run join the queue before the first step,
				// so that they start in one step rather than one step
				// apart. Best effort; it costs nothing when busy.
				runtime.Gosched()
				continue
			case <-b.quit:
				return
			}
		}
		b.step(run)
	}
}

// reap ends the sequences asked to stop, and every one when the model has
// been closed. Called with b.mu held.
func (b *Batch) reap() {
	for _, q := range slices.Clone(b.active) {
		switch {
		case b.abort != nil:
			b.finish(q, "", b.abort)
		case q.stop:
			b.finish(q, "", q.ctx.Err())
		}
	}
	for _, q := range slices.Clone(b.waiting) {
		if q.stop || b.abort != nil {
			b.waiting = slices.DeleteFunc(b.waiting, func(w *Sequence) bool { return w == q })
			b.pending--
			err := q.ctx.Err()
			if b.abort != nil {
				err = b.abort
			}
			b.end(q, err)
		}
	}
}

// admit gives free slots to the oldest waiting sequences. Called with b.mu
// held.
func (b *Batch) admit() {
	for len(b.free) > 0 && len(b.waiting) > 0 {
		q := b.waiting[0]
		b.waiting = b.waiting[1:]
		q.slot = b.free[len(b.free)-1]
		b.free = b.free[:len(b.free)-1]
		b.eb.Reset(q.slot)
		b.pending--
		b.active = append(b.active, q)
		q.state = seqRunning
		q.result.Queued = time.Since(q.submitted)
		q.result.PromptTokens = len(q.ids)
		b.stats.PromptTokens += len(q.ids)
		q.feed = q.ids
		q.sampler, _ = engine.NewSampler(q.o.sampling) // validated by prepare
		q.gen = newGenState(b.m.Tokenizer(), q.o, q.ids[len(q.ids)-1])
		q.gpuGreedy = q.o.sampling.Greedy() && !q.o.logprobs
		if q.o.max == 0 {
			b.finish(q, FinishLength, nil) // nothing to generate
		}
	}
}

// bySlot sorts a step's segments and their owners together, by slot.
type bySlot struct {
	segs   []engine.Segment
	owners []*Sequence
}

func (b bySlot) Len() int           { return len(b.segs) }
func (b bySlot) Less(i, j int) bool { return b.segs[i].Slot < b.segs[j].Slot }
func (b bySlot) Swap(i, j int) {
	b.segs[i], b.segs[j] = b.segs[j], b.segs[i]
	b.owners[i], b.owners[j] = b.owners[j], b.owners[i]
}

// step runs one batched step over the running sequences: one token of each
// that is generating, the next chunk of the oldest that is still reading
// its prompt, and the last token of every other prompt with one left; then
// it samples, hands out the tokens, and ends the sequences that are done.
func (b *Batch) step(run []*Sequence) {
	var segs []engine.Segment
	var owners []*Sequence
	var full []*Sequence // the end of the context
	logits := false
	prompt := false
	ctxLen := b.m.em.Context
	for _, q := range run {
		var toks []int
		switch {
		case len(q.feed) == 0:
			q.nextBuf[0] = q.next
			toks = q.nextBuf[:]
		case len(q.feed) == 1:
			// A prompt's last token rides like a decode token, beside the
			// chunk of another prompt: streams that submit one-token
			// prompts together start (and so run) in the same steps,
			// instead of joining one step apart.
			toks = q.feed
		case !prompt:
			prompt = true
			toks = q.feed[:min(len(q.feed), b.m.em.Chunk())]
		default:
			continue // one prompt at a time: it waits
		}
		if ctxLen > 0 && b.eb.Pos(q.slot)+len(toks) > ctxLen {
			full = append(full, q) // only a generated token can reach it: prompts fit (prepare)
			continue
		}
		out := len(toks) == len(q.feed) || len(q.feed) == 0
		segs = append(segs, engine.Segment{Slot: q.slot, Tokens: toks, Output: out})
		owners = append(owners, q)
		logits = logits || (out && !q.gpuGreedy)
	}
	// In slot order: the step's shape (and so its recording in the engine)
	// is then the set of slots and their token counts, whatever order the
	// sequences joined in, so that fewer shapes are recorded.
	sort.Sort(bySlot{segs, owners})
	var err error
	if len(segs) > 0 {
		err = b.eb.Step(context.Background(), segs, logits)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, q := range full {
		b.finish(q, FinishLength, nil)
	}
	if len(segs) == 0 {
		return
	}
	b.stats.Steps++
	b.stats.StepSizes[len(segs)]++
	if err != nil {
		err = fmt.Errorf("vkrun: batch step: %w", err) // ErrDeviceLost among others
		for _, q := range owners {
			b.finish(q, "", err)
		}
		return
	}
	for i, q := range owners {
		sg := segs[i]
		if len(q.feed) > 0 {
			q.feed = q.feed[len(sg.Tokens):]
		}
		if !sg.Output {
			continue
		}
		var next int
		var dist []float32
		if q.gpuGreedy {
			next = b.eb.ID(i)
		} else {
			q.logits = b.eb.Logits(i, q.logits)
			dist = q.logits
			next = q.sampler.Sample(dist)
		}
		t, end, emit := q.gen.take(next, dist)
		if !emit {
			b.finish(q, FinishStop, nil) // the end-of-sequence or an end-of-turn token
			continue
		}
		if q.result.Tokens++; q.result.Tokens == 1 {
			q.result.TTFT = time.Since(q.submitted)
		}
		b.stats.GeneratedTokens++
		q.push(t)
		q.next = next
		if end != "" {
			b.finish(q, end, nil)
		}
	}
}

// push hands t to q's consumer. Called with b.mu held.
func (q *Sequence) push(t Token) {
	q.out = append(q.out, t)
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// finish ends running sequence q: with a finish reason, its held-back text
// goes out first; otherwise err (nil when its consumer left) says why. Its
// slot is free at once. Called with b.mu held.
func (b *Batch) finish(q *Sequence, why FinishReason, err error) {
	if why != "" {
		if rest := q.gen.flush(); rest != "" {
			q.push(Token{ID: -1, Text: rest})
		}
	}
	q.result.Finish = why
	b.active = slices.DeleteFunc(b.active, func(a *Sequence) bool { return a == q })
	// Kept in descending order, so that admit takes the lowest free slot:
	// sequences then run in the same slots whatever order the last ones
	// left in, and a step's shape (its slots and their token counts) recurs
	// instead of being recorded anew.
	i, _ := slices.BinarySearchFunc(b.free, q.slot, func(a, t int) int { return t - a })
	b.free = slices.Insert(b.free, i, q.slot)
	b.end(q, err)
}

// end records how q ended and wakes its consumer. Called with b.mu held.
func (b *Batch) end(q *Sequence, err error) {
	switch {
	case q.result.Finish != "":
		b.stats.Served++
	case err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		b.stats.Cancelled++
	default:
		b.stats.Failed++
	}
	q.err = err
	q.result.Duration = time.Since(q.submitted)
	q.state = seqDone
	close(q.ended)
	b.live.Done()
	q.unwatch() // ctx no longer matters
}

// Stats reports the batch's work so far.
func (b *Batch) Stats() BatchStats {
	b.mu.Lock()
	st := b.stats
	st.StepSizes = slices.Clone(st.StepSizes)
	st.Active, st.Queued, st.Closed = len(b.active), b.pending, b.closed
	b.mu.Unlock()
	st.DeviceBytes, st.HostBytes = b.m.dev.AllocatedBytes()
	st.DeviceLost = b.m.dev.Lost()
	return st
}

// Close stops accepting sequences (Submit says ErrBatchClosed), waits for
// the submitted ones to end, queued ones included (drain), and frees the
// slots' KV caches. The model stays open. Idempotent; do not call it
// inside a Tokens loop, which it would wait for.
func (b *Batch) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.live.Wait()
	b.shutdown()
	return nil
}

// shutdown stops the scheduler and frees the engine batch. Idempotent.
func (b *Batch) shutdown() {
	b.closeOnce.Do(func() {
		close(b.quit)
		<-b.done
		b.eb.Close()
		b.m.mu.Lock()
		delete(b.m.batches, b)
		b.m.mu.Unlock()
	})
}

// close is the model's Close: every sequence ends with ErrModelClosed (a
// submitted one whose Tokens has not run, when it does), and the batch's
// device memory is freed.
func (b *Batch) close() {
	b.mu.Lock()
	b.closed = true
	b.abort = ErrModelClosed
	b.mu.Unlock()
	b.poke()
	<-b.done // the scheduler has ended the running and waiting sequences
	b.shutdown()
}
