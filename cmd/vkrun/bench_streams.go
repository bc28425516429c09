package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vkrun/vkrun"
)

// streamsUsage is the help of bench --streams.
const streamsUsage = `comma-separated stream counts S (e.g. 1,8): beside pp and tg, run S concurrent greedy streams through a vkrun.Batch of S slots, ` +
	`each a 1-token prompt and then -n tokens (end-of-sequence ignored), at depth 0. ` +
	`Its tok/s is the aggregate decode rate: the tokens generated after each stream's first, summed over the streams, ` +
	`divided by the wall time from the first stream's first token to the last stream's last token. ` +
	`TTFT is from Submit to a stream's first token. Each S is run once untimed first (kernel JIT, step recordings)`

// parseStreams reads --streams: distinct stream counts ≥ 1, in order.
func parseStreams(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		switch {
		case err != nil || n < 1:
			return nil, fmt.Errorf("--streams: %q is not a stream count ≥ 1", f)
		case n > maxBenchStreams:
			return nil, fmt.Errorf("--streams: %d streams: at most %d (each holds a KV cache)", n, maxBenchStreams)
		case slices.Contains(out, n):
			return nil, fmt.Errorf("--streams: %d given twice", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// maxBenchStreams bounds --streams: each stream is a slot with a KV cache.
const maxBenchStreams = 256

// streamRound is one timed run of S concurrent streams.
type streamRound struct {
	tokS        float64         // the aggregate decode rate (streamsUsage)
	ttft        []time.Duration // each stream's, from Submit
	steps, full int             // the batch's steps, and those that carried all S streams
}

// runStreams submits streams greedy sequences of 1-token prompts (prompt(s)
// for stream s) and n tokens each to b, all before any of them is ranged
// over, consumes them concurrently, and times them.
func runStreams(ctx context.Context, b *vkrun.Batch, streams, n int, prompt func(s int) []int) (streamRound, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a failure ends the other streams (Close waits for them)
	before := b.Stats()
	seqs := make([]*vkrun.Sequence, streams)
	for s := range seqs {
		q, err := b.Submit(ctx, vkrun.Request{PromptIDs: prompt(s),
			Options: []vkrun.GenerateOption{vkrun.WithMaxTokens(n), vkrun.WithIgnoreEOS()}})
		if err != nil {
			return streamRound{}, fmt.Errorf("stream %d of %d: %w", s+1, streams, err)
		}
		seqs[s] = q
	}
	first, last := make([]time.Time, streams), make([]time.Time, streams)
	counts, errs := make([]int, streams), make([]error, streams)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for s, q := range seqs {
		wg.Go(func() {
			<-start
			for t, err := range q.Tokens() {
				if err != nil {
					errs[s] = err
					cancel()
					return
				}
				if t.ID < 0 { // held-back text, not a token
					continue
				}
				now := time.Now()
				if counts[s] == 0 {
					first[s] = now
				}
				last[s], counts[s] = now, counts[s]+1
			}
		})
	}
	close(start)
	wg.Wait()
	var r streamRound
	var t0, t1 time.Time
	decoded := 0
	for s, q := range seqs {
		if errs[s] != nil {
			return streamRound{}, fmt.Errorf("stream %d of %d: %w", s+1, streams, errs[s])
		}
		if counts[s] != n {
			return streamRound{}, fmt.Errorf("stream %d of %d: %d tokens, want %d", s+1, streams, counts[s], n)
		}
		decoded += counts[s] - 1
		if t0.IsZero() || first[s].Before(t0) {
			t0 = first[s]
		}
		if last[s].After(t1) {
			t1 = last[s]
		}
		r.ttft = append(r.ttft, q.Result().TTFT)
	}
	if wall := t1.Sub(t0); wall > 0 {
		r.tokS = float64(decoded) / wall.Seconds()
	}
	after := b.Stats()
	r.steps = after.Steps - before.Steps
	r.full = int(after.StepSizes[streams] - before.StepSizes[streams])
	return r, nil
}

// percentileMs is the nearest-rank percentile p of d, in milliseconds.
func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	k := int(p*float64(len(sorted))+0.5) - 1
	return float64(sorted[max(0, min(k, len(sorted)-1))].Microseconds()) / 1000
}

// benchStreams runs the streams test of `streams` concurrent streams of n
// tokens: one untimed round, then reps timed ones, on one batch.
func benchStreams(ctx context.Context, m *vkrun.Model, streams, n, reps int, tokens func(n, seed int) []int, results *[]benchResult) error {
	b, err := m.NewBatch(vkrun.BatchOptions{Slots: streams, MaxQueue: streams})
	if err != nil {
		return err
	}
	defer b.Close()
	// Stream s's prompt is one token, stream 0's the tg test's.
	prompt := func(s int) []int { return tokens(1, 7+s) }
	r := benchResult{Test: streamsTest(streams), Tokens: n, Streams: streams}
	var ttft []time.Duration
	full := 0
	// Round −1 is untimed: the driver compiles each kernel on its first
	// run, and the batch records each step shape on first use.
	for rep := -1; rep < reps; rep++ {
		round, err := runStreams(ctx, b, streams, n, prompt)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Test, err)
		}
		if rep < 0 {
			continue
		}
		r.TokS = append(r.TokS, round.tokS)
		ttft = append(ttft, round.ttft...)
		r.Steps += round.steps
		full += round.full
	}
	r.Mean, r.Stddev = meanStd(r.TokS)
	r.TTFTp50, r.TTFTp99 = percentileMs(ttft, 0.5), percentileMs(ttft, 0.99)
	if r.Steps > 0 {
		r.FullSteps = float64(full) / float64(r.Steps)
	}
	*results = append(*results, r)
	return nil
}

// streamsTest names the streams test of S streams.
func streamsTest(streams int) string { return fmt.Sprintf("s%d", streams) }
