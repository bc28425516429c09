package vkrun_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/vk"
)

// lone is what a lone Session generates: the reference a batched sequence
// must equal.
type lone struct {
	ids  []int
	text string
}

func generateLone(t *testing.T, m *vkrun.Model, prompt string, opts ...vkrun.GenerateOption) lone {
	t.Helper()
	s, err := m.NewSession()
	require.NoError(t, err)
	defer s.Close()
	var out lone
	for tok, err := range s.Generate(context.Background(), prompt, opts...) {
		require.NoError(t, err)
		if tok.ID >= 0 {
			out.ids = append(out.ids, tok.ID)
		}
		out.text += tok.Text
	}
	return out
}

// collect ranges over a sequence's tokens.
func collect(seq func(func(vkrun.Token, error) bool)) (lone, error) {
	var out lone
	for tok, err := range seq {
		if err != nil {
			return out, err
		}
		if tok.ID >= 0 {
			out.ids = append(out.ids, tok.ID)
		}
		out.text += tok.Text
	}
	return out, nil
}

func newBatch(t *testing.T, m *vkrun.Model, o vkrun.BatchOptions) *vkrun.Batch {
	t.Helper()
	b, err := m.NewBatch(o)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// More concurrent greedy requests than slots, each with its own prompt,
// give exactly the ids and text a lone Session gives.
func TestBatchEqualsLoneSession(t *testing.T) {
	m := loadStories(t)
	prompts := []string{"", "Once upon a time", "Lily saw a big dog", "The sun", "Tom and Sue went", "One day"}
	want := make([]lone, len(prompts))
	for i, p := range prompts {
		want[i] = generateLone(t, m, p, vkrun.WithMaxTokens(40))
	}
	b := newBatch(t, m, vkrun.BatchOptions{Slots: 3})
	got := make([]lone, len(prompts))
	results := make([]vkrun.Result, len(prompts))
	errs := make([]error, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Go(func() {
			q, err := b.Submit(context.Background(), vkrun.Request{Prompt: p, Options: []vkrun.GenerateOption{vkrun.WithMaxTokens(40)}})
			if err != nil {
				errs[i] = err
				return
			}
			got[i], errs[i] = collect(q.Tokens())
			results[i] = q.Result()
		})
	}
	wg.Wait()
	for i := range prompts {
		require.NoError(t, errs[i], "prompt %q", prompts[i])
		assert.Equal(t, want[i].ids, got[i].ids, "prompt %q", prompts[i])
		assert.Equal(t, want[i].text, got[i].text, "prompt %q", prompts[i])
		assert.Equal(t, len(want[i].ids), results[i].Tokens)
		assert.Equal(t, vkrun.FinishLength, results[i].Finish)
		assert.Positive(t, results[i].TTFT)
		assert.GreaterOrEqual(t, results[i].Duration, results[i].TTFT)
	}
	st := b.Stats()
	assert.Equal(t, len(prompts), st.Served)
	assert.Equal(t, 3, st.Slots)
	assert.Zero(t, st.Active)
	assert.Zero(t, st.Queued)
	assert.Equal(t, 40*len(prompts), st.GeneratedTokens)
	// The streams shared steps: fewer steps than tokens, and some steps
	// carried all three slots.
	assert.Less(t, st.Steps, st.GeneratedTokens)
	var steps uint64
	for _, n := range st.StepSizes {
		steps += n
	}
	assert.Equal(t, uint64(st.Steps), steps)
	assert.Positive(t, st.StepSizes[3])
	assert.Empty(t, m.ValidationMessages())
}

// Each way a sequence ends gives its finish reason, and its text is a lone
// Session's for the same options.
func TestBatchFinishReasons(t *testing.T) {
	m := loadStories(t)
	ref := generateLone(t, m, "Once upon a time", vkrun.WithMaxTokens(30))
	require.Len(t, ref.ids, 30)
	// A stop string that completes at the 12th token: the text before it.
	tok := m.Tokenizer()
	upTo := func(n int) string { return tok.Decode(ref.ids[:n]) }
	stopAt12 := strings.TrimPrefix(upTo(12), upTo(11))
	require.NotEmpty(t, strings.TrimSpace(stopAt12))
	for _, tc := range []struct {
		name   string
		opts   []vkrun.GenerateOption
		finish vkrun.FinishReason
		tokens int
	}{
		{"max tokens", []vkrun.GenerateOption{vkrun.WithMaxTokens(7)}, vkrun.FinishLength, 7},
		{"zero max tokens", []vkrun.GenerateOption{vkrun.WithMaxTokens(0)}, vkrun.FinishLength, 0},
		{"stop string", []vkrun.GenerateOption{vkrun.WithMaxTokens(30), vkrun.WithStop(stopAt12)}, vkrun.FinishStop, -1},
		{"stop string at the last allowed token", []vkrun.GenerateOption{vkrun.WithMaxTokens(12), vkrun.WithStop(stopAt12)}, vkrun.FinishStop, -1},
		{"stop token", []vkrun.GenerateOption{vkrun.WithMaxTokens(30), vkrun.WithStopTokens(ref.ids[5])}, vkrun.FinishStop, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := generateLone(t, m, "Once upon a time", tc.opts...)
			b := newBatch(t, m, vkrun.BatchOptions{})
			q, err := b.Submit(context.Background(), vkrun.Request{Prompt: "Once upon a time", Options: tc.opts})
			require.NoError(t, err)
			got, err := collect(q.Tokens())
			require.NoError(t, err)
			assert.Equal(t, want.text, got.text)
			assert.Equal(t, want.ids, got.ids)
			r := q.Result()
			assert.Equal(t, tc.finish, r.Finish)
			assert.Equal(t, len(got.ids), r.Tokens)
			if tc.tokens >= 0 {
				assert.Equal(t, tc.tokens, r.Tokens)
			}
			assert.Equal(t, len(tok.EncodeWith("Once upon a time", tok.AddBOS())), r.PromptTokens)
		})
	}
}

// A model with global layers ends a sequence at the end of its context with
// FinishLength, not an error, and refuses a prompt longer than the context.
func TestBatchContext(t *testing.T) {
	m := loadStories(t, vkrun.WithContext(16))
	require.Equal(t, 16, m.Context())
	b := newBatch(t, m, vkrun.BatchOptions{})
	q, err := b.Submit(context.Background(), vkrun.Request{PromptIDs: []int{1, 400, 401, 402}, Options: []vkrun.GenerateOption{vkrun.WithMaxTokens(100)}})
	require.NoError(t, err)
	got, err := collect(q.Tokens())
	require.NoError(t, err)
	assert.Equal(t, vkrun.FinishLength, q.Result().Finish)
	assert.Equal(t, 16-4+1, len(got.ids), "the prompt's 4 positions, then one token per position left, the last sampled from position 16")

	_, err = b.Submit(context.Background(), vkrun.Request{PromptIDs: make([]int, 17)})
	assert.ErrorIs(t, err, vkrun.ErrInvalidRequest)
	assert.ErrorIs(t, err, vkrun.ErrContextFull)
	assert.ErrorContains(t, err, "the prompt has 17 tokens and the context holds 16")
}

func TestBatchInvalidRequests(t *testing.T) {
	m := loadStories(t)
	b := newBatch(t, m, vkrun.BatchOptions{})
	for _, tc := range []struct {
		name string
		r    vkrun.Request
		want string
	}{
		{"two prompts", vkrun.Request{Prompt: "a", PromptIDs: []int{1}}, "give one of"},
		{"prompt and messages", vkrun.Request{Prompt: "a", Messages: []vkrun.Message{{Role: "user", Content: "b"}}}, "give one of"},
		{"id outside the vocabulary", vkrun.Request{PromptIDs: []int{1, 512}}, "id 512, outside the vocabulary (512)"},
		{"negative id", vkrun.Request{PromptIDs: []int{-1}}, "id -1"},
		{"negative max tokens", vkrun.Request{Options: []vkrun.GenerateOption{vkrun.WithMaxTokens(-1)}}, "max tokens -1"},
		{"negative temperature", vkrun.Request{Options: []vkrun.GenerateOption{vkrun.WithTemperature(-1)}}, "temperature"},
		{"top-p above 1", vkrun.Request{Options: []vkrun.GenerateOption{vkrun.WithTopP(2)}}, "top-p"},
		{"messages without a chat template", vkrun.Request{Messages: []vkrun.Message{{Role: "user", Content: "hi"}}}, "no chat template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Submit(context.Background(), tc.r)
			assert.ErrorIs(t, err, vkrun.ErrInvalidRequest)
			assert.ErrorContains(t, err, tc.want)
			for _, err := range b.Generate(context.Background(), tc.r) {
				assert.ErrorIs(t, err, vkrun.ErrInvalidRequest, "Generate yields Submit's error")
			}
		})
	}
	assert.Zero(t, b.Stats().Queued, "a refused request takes no place")
}

// Messages are rendered with the batch's chat template and equal a lone
// Session fed the template's ids.
func TestBatchMessages(t *testing.T) {
	m := loadStories(t)
	raw, err := vkrun.ChatTemplateByName("raw")
	require.NoError(t, err)
	b := newBatch(t, m, vkrun.BatchOptions{Template: raw})
	assert.Equal(t, "raw", b.Template().Name())
	msgs := []vkrun.Message{{Role: vkrun.RoleUser, Content: "Once upon a time"}}
	ids, err := raw.Encode(m.Tokenizer(), msgs, true)
	require.NoError(t, err)
	want := generateLone(t, m, "", vkrun.WithPromptTokens(ids), vkrun.WithMaxTokens(20))
	got, err := collect(b.Generate(context.Background(), vkrun.Request{Messages: msgs, Options: []vkrun.GenerateOption{vkrun.WithMaxTokens(20)}}))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// holdFirst starts a sequence on b and holds its slot inside the Tokens loop
// after the first token until release is closed; it returns when the slot
// is held, and done gets the sequence's text when it ends.
func holdFirst(t *testing.T, b *vkrun.Batch, r vkrun.Request) (release chan struct{}, done chan lone) {
	t.Helper()
	q, err := b.Submit(context.Background(), r)
	require.NoError(t, err)
	release, done, held := make(chan struct{}), make(chan lone, 1), make(chan struct{})
	go func() {
		var out lone
		first := true
		for tok, err := range q.Tokens() {
			if err != nil {
				out.text = "error: " + err.Error()
				break
			}
			out.ids = append(out.ids, tok.ID)
			out.text += tok.Text
			if first {
				first = false
				close(held)
				<-release
			}
		}
		done <- out
	}()
	<-held
	return release, done
}

// waitFor polls cond (the scheduler's state changes on other goroutines).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// The queue is bounded and FIFO; a sequence cancelled in the queue leaves
// it at once.
func TestBatchQueue(t *testing.T) {
	m := loadStories(t)
	b := newBatch(t, m, vkrun.BatchOptions{Slots: 1, MaxQueue: 2})
	short := []vkrun.GenerateOption{vkrun.WithMaxTokens(5)}
	release, done := holdFirst(t, b, vkrun.Request{Options: short})
	st := b.Stats()
	assert.Equal(t, 1, st.Active)

	// The order in which sequences got the slot: Submit's time plus the
	// time each waited (Result.Queued), not when each consumer happens to
	// see its first token.
	slotAt := map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	run := func(name string, ctx context.Context) chan error {
		at := time.Now()
		q, err := b.Submit(ctx, vkrun.Request{Prompt: name, Options: short})
		require.NoError(t, err)
		errc := make(chan error, 1)
		wg.Go(func() {
			var err error
			for _, err = range q.Tokens() {
			}
			if err == nil {
				mu.Lock()
				slotAt[name] = at.Add(q.Result().Queued)
				mu.Unlock()
			}
			errc <- err
		})
		return errc
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancelled := run("Lily", cctx)
	waitFor(t, "Lily waiting", func() bool { return b.Stats().Queued == 1 })
	run("Tom", context.Background())
	waitFor(t, "Tom waiting", func() bool { return b.Stats().Queued == 2 })
	_, err := b.Submit(context.Background(), vkrun.Request{Options: short})
	assert.ErrorIs(t, err, vkrun.ErrQueueFull)

	cancel()
	assert.ErrorIs(t, <-cancelled, context.Canceled)
	waitFor(t, "Lily gone", func() bool { return b.Stats().Queued == 1 })
	run("Sue", context.Background())
	waitFor(t, "Sue waiting", func() bool { return b.Stats().Queued == 2 })
	close(release)
	first := <-done
	assert.Len(t, first.ids, 5)
	wg.Wait()
	require.Len(t, slotAt, 2, "Tom and Sue ran")
	assert.True(t, slotAt["Tom"].Before(slotAt["Sue"]), "first come, first served: Tom got the slot at %v, Sue at %v", slotAt["Tom"], slotAt["Sue"])
	st = b.Stats()
	assert.Equal(t, 3, st.Served)
	assert.Equal(t, 1, st.Cancelled)
	assert.Zero(t, st.Queued+st.Active)
}

// A cancel, or a consumer that leaves the loop, frees the slot within one
// step, and the next sequence on that slot starts afresh.
func TestBatchCancelFreesSlot(t *testing.T) {
	m := loadStories(t)
	want := generateLone(t, m, "Once upon a time", vkrun.WithMaxTokens(20))
	b := newBatch(t, m, vkrun.BatchOptions{Slots: 1})
	long := []vkrun.GenerateOption{vkrun.WithMaxTokens(200)}

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	var gotErr error
	for tok, err := range b.Generate(ctx, vkrun.Request{Options: long}) {
		if err != nil {
			gotErr = err
			break
		}
		if tok.ID >= 0 {
			n++
		}
		if n == 3 {
			cancel()
		}
	}
	assert.ErrorIs(t, gotErr, context.Canceled)
	assert.Equal(t, 3, n, "no token after the cancel")
	assert.Zero(t, b.Stats().Active, "the slot is free when the loop ends")

	for range b.Generate(context.Background(), vkrun.Request{Options: long}) {
		break // the consumer leaves
	}
	st := b.Stats()
	assert.Zero(t, st.Active)
	assert.Equal(t, 2, st.Cancelled)

	got, err := collect(b.Generate(context.Background(), vkrun.Request{Prompt: "Once upon a time", Options: []vkrun.GenerateOption{vkrun.WithMaxTokens(20)}}))
	require.NoError(t, err)
	assert.Equal(t, want, got, "the slot's session was reset")

	// A sequence whose ctx ends before its Tokens loop gives its place up.
	ctx, cancel = context.WithCancel(context.Background())
	q, err := b.Submit(ctx, vkrun.Request{})
	require.NoError(t, err)
	assert.Equal(t, 1, b.Stats().Queued)
	cancel()
	waitFor(t, "the abandoned place", func() bool { return b.Stats().Queued == 0 })
	_, err = collect(q.Tokens())
	assert.ErrorIs(t, err, context.Canceled)
	_, err = collect(q.Tokens())
	assert.Error(t, err, "a second range")
}

// Close stops accepting, drains the running and queued sequences to their
// ends, then returns.
func TestBatchCloseDrains(t *testing.T) {
	m := loadStories(t)
	b, err := m.NewBatch(vkrun.BatchOptions{Slots: 1})
	require.NoError(t, err)
	opts := []vkrun.GenerateOption{vkrun.WithMaxTokens(15)}
	want := generateLone(t, m, "Once upon a time", opts...)
	release, done := holdFirst(t, b, vkrun.Request{Options: opts})
	q, err := b.Submit(context.Background(), vkrun.Request{Prompt: "Once upon a time", Options: opts})
	require.NoError(t, err)
	queued := make(chan lone, 1)
	go func() {
		got, err := collect(q.Tokens())
		if err != nil {
			got.text = "error: " + err.Error()
		}
		queued <- got
	}()
	waitFor(t, "the queued sequence", func() bool { return b.Stats().Queued == 1 })

	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	waitFor(t, "Close to begin", func() bool { return b.Stats().Closed })
	_, err = b.Submit(context.Background(), vkrun.Request{})
	assert.ErrorIs(t, err, vkrun.ErrBatchClosed)
	select {
	case <-closed:
		t.Fatal("Close returned before the sequences ended")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	assert.Len(t, (<-done).ids, 15, "the running sequence ran to its end")
	assert.Equal(t, want, <-queued, "the queued sequence ran to its end")
	<-closed
	assert.Equal(t, 2, b.Stats().Served)
	require.NoError(t, b.Close(), "Close is idempotent")
	for _, err := range b.Generate(context.Background(), vkrun.Request{}) {
		assert.ErrorIs(t, err, vkrun.ErrBatchClosed)
	}
}

func TestNewBatchErrors(t *testing.T) {
	m := loadStories(t)
	_, err := m.NewBatch(vkrun.BatchOptions{Slots: -1})
	assert.ErrorContains(t, err, "slots -1")
	_, err = m.NewBatch(vkrun.BatchOptions{MaxQueue: -1})
	assert.ErrorContains(t, err, "queue -1")
	require.NoError(t, m.Close())
	_, err = m.NewBatch(vkrun.BatchOptions{})
	assert.ErrorIs(t, err, vkrun.ErrModelClosed)
}

// A bounded load: 100 requests, 8 at a time on 4 slots, with sampling and
// greedy mixed. None fails, the device memory after the first request is
// the memory at the end, and no goroutine is left behind.
func TestBatchLoad(t *testing.T) {
	m := loadStories(t)
	goroutines := runtime.NumGoroutine()
	b, err := m.NewBatch(vkrun.BatchOptions{Slots: 4, MaxQueue: 8})
	require.NoError(t, err)
	request := func(i int) vkrun.Request {
		opts := []vkrun.GenerateOption{vkrun.WithMaxTokens(4 + i%13)}
		if i%2 == 1 {
			opts = append(opts, vkrun.WithTemperature(0.8), vkrun.WithTopK(40), vkrun.WithSeed(uint64(i)))
		}
		return vkrun.Request{Prompt: []string{"Once upon a time", "Lily", ""}[i%3], Options: opts}
	}
	_, err = collect(b.Generate(context.Background(), request(0)))
	require.NoError(t, err)
	afterFirst := b.Stats().DeviceBytes

	const total, concurrent = 100, 8
	var failures []string
	var mu sync.Mutex
	sem := make(chan struct{}, concurrent)
	var wg sync.WaitGroup
	for i := 1; i < total; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := collect(b.Generate(context.Background(), request(i))); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("request %d: %v", i, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Empty(t, failures)
	st := b.Stats()
	assert.Equal(t, total, st.Served)
	assert.Equal(t, afterFirst, st.DeviceBytes, "device memory after the first request and at the end")
	require.NoError(t, b.Close())
	settle(t, goroutines)
}

// settle waits for the goroutine count to come back to before.
func settle(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkBatch runs streams concurrent greedy sequences of 64 tokens on
// as many slots of stories260K, and reports the aggregate decode rate and
// the time to first token (p50, p99 over every sequence):
//
//	go test -run '^$' -bench BenchmarkBatch -benchtime 8x .
func BenchmarkBatch(b *testing.B) {
	m, err := vkrun.Load(context.Background(), testmodel.Stories260K(b))
	if errors.Is(err, vk.ErrNoLoader) {
		b.Skip(err)
	}
	require.NoError(b, err)
	defer m.Close()
	const tokens = 64
	for _, streams := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			batch, err := m.NewBatch(vkrun.BatchOptions{Slots: streams})
			require.NoError(b, err)
			defer batch.Close()
			r := vkrun.Request{Prompt: "Once upon a time", Options: []vkrun.GenerateOption{vkrun.WithMaxTokens(tokens), vkrun.WithIgnoreEOS()}}
			var ttft []time.Duration
			var mu sync.Mutex
			generated := 0
			// round runs streams sequences at once, all submitted before any
			// is ranged over, and records their TTFT and tokens.
			round := func(record bool) {
				seqs := make([]*vkrun.Sequence, streams)
				for i := range seqs {
					q, err := batch.Submit(context.Background(), r)
					require.NoError(b, err)
					seqs[i] = q
				}
				var wg sync.WaitGroup
				for _, q := range seqs {
					wg.Go(func() {
						if _, err := collect(q.Tokens()); err != nil {
							b.Error(err)
						}
						if !record {
							return
						}
						res := q.Result()
						mu.Lock()
						ttft = append(ttft, res.TTFT)
						generated += res.Tokens
						mu.Unlock()
					})
				}
				wg.Wait()
			}
			// Warm up with as many streams as the timed rounds run: the
			// driver compiles each kernel on its first run, and the engine
			// records each step shape (the slots a step carries and their
			// token counts) on first use, so every shape the rounds take
			// is recorded before the timer starts.
			round(false)
			for b.Loop() {
				round(true)
			}
			b.ReportMetric(float64(generated)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(float64(percentile(ttft, 0.5).Microseconds())/1000, "ttft-p50-ms")
			b.ReportMetric(float64(percentile(ttft, 0.99).Microseconds())/1000, "ttft-p99-ms")
		})
	}
}

// percentile of sorted durations (nearest rank).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sorted := slices.Clone(d)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	k := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}
