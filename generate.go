package vkrun

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vkrun/vkrun/engine"
	"github.com/vkrun/vkrun/loader"
)

// Token is one generated token.
type Token struct {
	// ID is the token id. A last Token with ID −1 may carry text that was
	// held back (an incomplete character, or a possible start of a stop
	// string that did not complete).
	ID   int
	Text string // the text it adds: complete UTF-8, possibly empty while held back
	// LogProb is log p(token) under the model before sampling filters; it is
	// set when WithLogProbs is given.
	LogProb float64
}

// Stats counts a session's work.
type Stats struct {
	PromptTokens int
	PrefillTime  time.Duration
	Generated    int
	DecodeTime   time.Duration
}

// PrefillRate is prompt tokens per second.
func (s Stats) PrefillRate() float64 { return rate(s.PromptTokens, s.PrefillTime) }

// DecodeRate is generated tokens per second.
func (s Stats) DecodeRate() float64 { return rate(s.Generated, s.DecodeTime) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Session is one conversation or text: its KV cache carries everything
// generated so far, so a later Generate continues where the last stopped
// without prefilling the history again. Generate, Prefill and Reset belong
// to one goroutine at a time; Stats, Profile, Pos and Close may be called
// from anywhere, inside a Generate range loop too (Reset, Prefill and a
// nested Generate there return ErrBusy; Close ends the loop).
type Session struct {
	m  *Model
	es *engine.Session

	// mu guards everything below and is held while a step runs on the
	// device; Generate releases it while the caller's loop body runs.
	mu      sync.Mutex
	pending int // a token sampled (and yielded) but not yet fed to the model, or -1
	stats   Stats
	closed  bool
	busy    bool      // a Generate is under way
	ready   []float32 // the logits after a Prefill, for the next Generate to sample from; nil otherwise
	last    int       // the last token fed, for the decoder's leading-space rule
}

// GenerateOption configures Generate.
type GenerateOption func(*genOptions)

type genOptions struct {
	sampling engine.Sampling
	max      int
	stop     []string
	ids      []int
	haveIDs  bool
	logprobs bool
	noEOS    bool
	stopIDs  []int
}

// WithTemperature sets the sampling temperature (0, the default, is greedy).
func WithTemperature(t float64) GenerateOption {
	return func(o *genOptions) { o.sampling.Temperature = t }
}

// WithTopK keeps the k most likely tokens (0: all).
func WithTopK(k int) GenerateOption { return func(o *genOptions) { o.sampling.TopK = k } }

// WithTopP keeps the smallest set of tokens whose probability reaches p.
func WithTopP(p float64) GenerateOption { return func(o *genOptions) { o.sampling.TopP = p } }

// WithMinP drops tokens less likely than p times the most likely one.
func WithMinP(p float64) GenerateOption { return func(o *genOptions) { o.sampling.MinP = p } }

// WithSeed seeds sampling: the same seed, prompt and settings give the same text.
func WithSeed(seed uint64) GenerateOption { return func(o *genOptions) { o.sampling.Seed = seed } }

// WithMaxTokens caps the generated tokens (default 256).
func WithMaxTokens(n int) GenerateOption { return func(o *genOptions) { o.max = n } }

// WithStop ends generation before any of the strings; the text yielded never
// contains one.
func WithStop(stop ...string) GenerateOption {
	return func(o *genOptions) { o.stop = append(o.stop, stop...) }
}

// WithPromptTokens feeds these token ids instead of encoding the prompt text.
func WithPromptTokens(ids []int) GenerateOption {
	return func(o *genOptions) { o.ids, o.haveIDs = append([]int(nil), ids...), true }
}

// WithStopTokens ends generation at any of these token ids, as at the
// end-of-sequence token: the id is not yielded, and it is fed at the start
// of the next Generate on the session, as chat templates expect (Gemma ends
// a turn with <end_of_turn>, not with its EOS).
func WithStopTokens(ids ...int) GenerateOption {
	return func(o *genOptions) { o.stopIDs = append(o.stopIDs, ids...) }
}

// WithIgnoreEOS keeps generating past the end-of-sequence token (benchmarks).
func WithIgnoreEOS() GenerateOption { return func(o *genOptions) { o.noEOS = true } }

// WithLogProbs fills Token.LogProb. Greedy decoding then reads the logits
// back instead of taking the argmax on the GPU.
func WithLogProbs() GenerateOption { return func(o *genOptions) { o.logprobs = true } }

// KVBytes is the device memory of the session's KV cache, in bytes (see
// Model.KVBytes).
func (s *Session) KVBytes() uint64 { return s.es.KVBytes() }

// Pos is the number of tokens the session's cache has seen.
func (s *Session) Pos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.es.Pos()
}

// StepStats describes the work of one recorded step (see engine.StepStats).
type StepStats = engine.StepStats

// DecodeStats describes the session's one-token greedy decode step: its
// dispatches, barriers and host traffic, the same at every position.
func (s *Session) DecodeStats() (StepStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return StepStats{}, ErrSessionClosed
	}
	if s.busy {
		return StepStats{}, ErrBusy
	}
	return s.es.DecodeStats()
}

// Stats reports the session's work so far.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Profile returns the GPU time per kernel since the session began, most
// expensive first; empty unless the model was loaded WithProfile.
func (s *Session) Profile() []KernelTime {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.es.Profile()
}

// Reset forgets the conversation. It fails with ErrBusy inside a Generate
// range loop and ErrSessionClosed after Close.
func (s *Session) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrSessionClosed
	case s.busy:
		return ErrBusy
	}
	s.es.Reset()
	s.pending, s.ready = -1, nil
	return nil
}

// Prefill feeds prompt (after whatever the session has seen, and the token
// a previous Generate sampled last) without sampling: the next Generate
// continues from it. WithPromptTokens feeds ids instead; the other options
// are ignored. At the start of a session the tokenizer's BOS is prepended.
// Cancelling ctx stops between prefill chunks, leaving the session at the
// last whole chunk.
func (s *Session) Prefill(ctx context.Context, prompt string, opts ...GenerateOption) error {
	var o genOptions
	for _, opt := range opts {
		opt(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrSessionClosed
	case s.busy:
		return ErrBusy
	}
	ids, err := s.promptIDs(prompt, o)
	if err != nil || len(ids) == 0 {
		return err
	}
	logits, err := s.prefill(ctx, ids)
	if err == nil {
		s.ready = slices.Clone(logits) // the engine's slice is reused by the next step
	}
	return err
}

// Close frees the session's cache. Idempotent. Inside a Generate range
// loop it ends the loop after the current token.
func (s *Session) Close() error {
	s.m.mu.Lock()
	delete(s.m.sessions, s)
	s.m.mu.Unlock()
	s.close()
	return nil
}

func (s *Session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.es.Close()
	}
}

// Generate feeds prompt (after whatever the session has seen) and streams
// the tokens the model generates, until the end-of-sequence token, a stop
// string or the token limit. Cancelling ctx stops within one step; the
// session stays usable and consistent. At the start of a session the
// tokenizer's BOS is prepended.
func (s *Session) Generate(ctx context.Context, prompt string, opts ...GenerateOption) iter.Seq2[Token, error] {
	o := genOptions{max: 256}
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(Token, error) bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case s.closed:
			s.mu.Unlock()
			yield(Token{}, ErrSessionClosed)
			s.mu.Lock()
			return
		case s.busy:
			s.mu.Unlock()
			yield(Token{}, ErrBusy)
			s.mu.Lock()
			return
		}
		s.busy = true
		defer func() { s.busy = false }()
		// yield runs the caller's loop body: without the lock, so that
		// Stats, Profile and Close work there.
		unlocked := func(t Token, err error) bool {
			s.mu.Unlock()
			defer s.mu.Lock()
			return yield(t, err)
		}
		if err := s.generate(ctx, prompt, o, unlocked); err != nil {
			unlocked(Token{}, err)
		}
	}
}

// promptIDs is what a Generate or Prefill feeds: the token sampled last and
// not yet fed, then the prompt's ids (BOS first at the start of the
// session), or BOS alone for an empty prompt at the start. Called with mu
// held.
func (s *Session) promptIDs(prompt string, o genOptions) ([]int, error) {
	tok := s.m.Tokenizer()
	var ids []int
	switch {
	case o.haveIDs:
		ids = o.ids
	case tok == nil:
		return nil, errors.New("vkrun: the model has no tokenizer; pass token ids with WithPromptTokens")
	default:
		ids = tok.EncodeWith(prompt, s.es.Pos() == 0 && s.pending < 0 && tok.AddBOS())
	}
	if s.pending >= 0 {
		ids = append([]int{s.pending}, ids...)
	}
	if len(ids) == 0 {
		switch {
		case s.ready != nil:
			return nil, nil // a Prefill left logits to sample from
		case s.es.Pos() == 0 && tok != nil:
			ids = []int{tok.BOS()}
		default:
			return nil, errors.New("vkrun: nothing to feed: give a prompt")
		}
	}
	return ids, nil
}

// prefill feeds ids and returns the logits after the last. Called with mu
// held.
func (s *Session) prefill(ctx context.Context, ids []int) ([]float32, error) {
	s.ready = nil
	t0 := time.Now()
	logits, err := s.es.Prefill(ctx, ids)
	// A cancelled prefill may have fed whole chunks; the session stays
	// consistent at its position, but a pending token is fed or gone.
	s.pending = -1
	if err != nil {
		return nil, err
	}
	s.stats.PromptTokens += len(ids)
	s.stats.PrefillTime += time.Since(t0)
	s.last = ids[len(ids)-1]
	return logits, nil
}

// generate is Generate's body, called with mu held; yield releases it
// while the caller's loop body runs, so after each yield the session may
// have been closed.
func (s *Session) generate(ctx context.Context, prompt string, o genOptions, yield func(Token, error) bool) error {
	if o.max < 0 {
		return fmt.Errorf("vkrun: max tokens %d", o.max)
	}
	sampler, err := engine.NewSampler(o.sampling)
	if err != nil {
		return err
	}
	tok := s.m.Tokenizer()
	ids, err := s.promptIDs(prompt, o)
	if err != nil {
		return err
	}
	logits := s.ready // after a Prefill, with nothing more to feed
	if len(ids) > 0 {
		if logits, err = s.prefill(ctx, ids); err != nil {
			return err
		}
	}
	s.ready = nil

	g := newGenState(tok, o, s.last)
	gpuGreedy := o.sampling.Greedy() && !o.logprobs
	t1 := time.Now()
	defer func() { s.stats.DecodeTime += time.Since(t1) }()

	next := sampler.Sample(logits)
	for g.n < o.max {
		t, end, emit := g.take(next, logits)
		if !emit {
			s.pending = next // fed with the next turn, as chat templates expect
			break
		}
		s.stats.Generated++
		s.pending = next
		if !yield(t, nil) || s.closed {
			return nil
		}
		if end != "" {
			break
		}
		// Feed the token and get the next one.
		if gpuGreedy {
			next, err = s.es.DecodeGreedy(ctx, next)
			logits = nil
		} else {
			logits, err = s.es.Decode(ctx, next)
			if err == nil {
				next = sampler.Sample(logits)
			}
		}
		if err != nil {
			return err // the step did not run: pending still holds the token to feed
		}
		s.pending = -1
	}
	if rest := g.flush(); rest != "" {
		yield(Token{ID: -1, Text: rest}, nil)
	}
	return nil
}

// genState is one sequence's generation after its prompt: what a sampled
// token ends or yields. Session.generate and a Batch's scheduler share it,
// so that a sequence ends and reads the same in both.
type genState struct {
	o    genOptions
	eos  int // the end-of-sequence id, or −1 (none, or WithIgnoreEOS)
	dec  *loader.Decoder
	stop *stopper
	n    int // tokens yielded
}

// newGenState starts after a prompt whose last id was last (the context
// of the decoder's leading-space rule). tok may be nil.
func newGenState(tok *loader.Tokenizer, o genOptions, last int) *genState {
	g := &genState{o: o, eos: -1, stop: newStopper(o.stop)}
	if tok != nil {
		g.dec = tok.NewDecoder()
		g.dec.Next(last) // context for the leading-space rule; its text is not ours
		if !o.noEOS {
			g.eos = tok.EOS()
		}
	}
	return g
}

// take handles a sampled token next (logits: the distribution it was drawn
// from, or nil). It returns emit false for the end-of-sequence or a stop
// token, which ends the text unyielded; otherwise the Token to yield and,
// when the text ends with it, why: a stop string (its text is cut before
// it) or the token limit.
func (g *genState) take(next int, logits []float32) (t Token, end FinishReason, emit bool) {
	if next == g.eos || slices.Contains(g.o.stopIDs, next) {
		return Token{}, FinishStop, false
	}
	t = Token{ID: next}
	if g.o.logprobs && logits != nil {
		t.LogProb = engine.LogProb(logits, next)
	}
	if g.dec != nil {
		t.Text = g.dec.Next(next)
	}
	g.n++
	out, done := g.stop.push(t.Text)
	t.Text = out
	switch {
	case done:
		end = FinishStop
	case g.n >= g.o.max:
		end = FinishLength
	}
	return t, end, true
}

// flush is the text held back at the end: an incomplete character, or a
// possible start of a stop string that did not complete.
func (g *genState) flush() string {
	rest := ""
	if g.dec != nil {
		rest, _ = g.stop.push(g.dec.Flush())
	}
	return rest + g.stop.flush()
}

// stopper holds back text that might be the start of a stop string.
type stopper struct {
	stops []string
	held  string
}

func newStopper(stops []string) *stopper {
	var s []string
	for _, x := range stops {
		if x != "" {
			s = append(s, x)
		}
	}
	return &stopper{stops: s}
}

func (s *stopper) active() bool { return len(s.stops) > 0 }

// push adds text and returns what can be released, and whether a stop
// string was found (the text before it is released, the rest dropped).
func (s *stopper) push(text string) (string, bool) {
	if !s.active() {
		return text, false
	}
	s.held += text
	cut := -1
	for _, x := range s.stops {
		if i := strings.Index(s.held, x); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		out := s.held[:cut]
		s.held = ""
		return out, true
	}
	// Keep the longest tail that is a prefix of a stop string.
	keep := 0
	for _, x := range s.stops {
		for k := min(len(x)-1, len(s.held)); k > keep; k-- {
			if strings.HasSuffix(s.held, x[:k]) {
				keep = k
				break
			}
		}
	}
	out := s.held[:len(s.held)-keep]
	s.held = s.held[len(s.held)-keep:]
	return out, false
}

func (s *stopper) flush() string {
	out := s.held
	s.held = ""
	return out
}
