package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bad --streams, or --streams without two tokens per stream, is a flag
// error: status 2 and one line that names the flag, before any model is
// written or loaded.
func TestBenchStreamsFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--streams", "0"}, `--streams: "0" is not a stream count ≥ 1`},
		{[]string{"--streams", "-2"}, `--streams: "-2" is not a stream count ≥ 1`},
		{[]string{"--streams", "1,x"}, `--streams: "x" is not a stream count ≥ 1`},
		{[]string{"--streams", "1,,8"}, `--streams: "" is not a stream count ≥ 1`},
		{[]string{"--streams", "8,8"}, "--streams: 8 given twice"},
		{[]string{"--streams", "257"}, "--streams: 257 streams: at most 256"},
		{[]string{"--streams", "1,8", "-n", "1"}, "--streams needs -n ≥ 2"},
		{[]string{"--streams", "1,8", "-n", "0", "-p", "8"}, "--streams needs -n ≥ 2"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			// A shape no test writes: a flag error must come before the
			// synthetic file is made.
			out, errOut, code := runCLI(append([]string{"bench", "--synthetic", "dim=64,layers=1,heads=2,kv=1,ffn=96,vocab=77:q8_0"}, c.args...)...)
			assert.Equal(t, 2, code)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
			assert.True(t, strings.HasPrefix(errOut, "vkrun bench: "+c.want), errOut)
		})
	}
}

func TestParseStreams(t *testing.T) {
	for s, want := range map[string][]int{"": nil, " ": nil, "1": {1}, "1, 8,2": {1, 8, 2}, "256": {256}} {
		got, err := parseStreams(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
}

func TestPercentileMs(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	assert.Zero(t, percentileMs(nil, 0.5))
	assert.Equal(t, 3.0, percentileMs(ms(5, 1, 3, 2, 4), 0.5))
	assert.Equal(t, 5.0, percentileMs(ms(5, 1, 3, 2, 4), 0.99))
	assert.Equal(t, 1.0, percentileMs(ms(5, 1, 3, 2, 4), 0))
}

// bench --streams on the tiny synthetic model: the JSON has a result per
// stream count beside tg, each with a rate per repetition, TTFTs and the
// batch's steps; the table has a row per stream count.
func TestBenchStreams(t *testing.T) {
	needVulkan(t)
	// -p 0: decode only, so that lavapipe compiles only the kernels that
	// one-token rows use.
	const n, reps = 3, 2
	out, errOut, code := runCLI("bench", "--synthetic", "tiny:q4_0", "-p", "0", "-n", "3", "-r", "2", "--streams", "1,2", "--json")
	require.Equal(t, 0, code, errOut)
	var r struct {
		Results []benchResult `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.Len(t, r.Results, 3)
	assert.Equal(t, "tg3", r.Results[0].Test)
	assert.Zero(t, r.Results[0].Streams)
	for i, streams := range []int{1, 2} {
		s := r.Results[1+i]
		assert.Equal(t, streamsTest(streams), s.Test)
		assert.Equal(t, streams, s.Streams)
		assert.Equal(t, n, s.Tokens)
		assert.Zero(t, s.Depth)
		require.Len(t, s.TokS, reps)
		for _, v := range s.TokS {
			assert.Positive(t, v)
		}
		assert.Positive(t, s.Mean)
		assert.Positive(t, s.TTFTp50)
		assert.GreaterOrEqual(t, s.TTFTp99, s.TTFTp50)
		// Each round takes at least n steps (the prompt's, then n−1
		// decodes), and a stream's tokens come one per step.
		assert.GreaterOrEqual(t, s.Steps, reps*n)
		assert.LessOrEqual(t, s.Steps, reps*n*streams)
		assert.Greater(t, s.FullSteps, 0.0)
		assert.LessOrEqual(t, s.FullSteps, 1.0)
	}
	if s1 := r.Results[1]; s1.Steps == reps*n {
		assert.Equal(t, 1.0, s1.FullSteps, "one stream: every step carries it")
	}

	out, errOut, code = runCLI("bench", "--synthetic", "tiny:q4_0", "-p", "0", "-n", "3", "-r", "1", "--streams", "2")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^\s*tg3\s+\d+\.\d+ ± \d+\.\d+\s*$`, out)
	assert.Regexp(t, `(?m)^\s*s2 \(tg3\)\s+\d+\.\d+ ± \d+\.\d+\s*$`, out)
	assert.Regexp(t, `(?m)^s2: 2 streams of 3 tokens: aggregate decode \d+\.\d+ ± \d+\.\d+ tok/s; TTFT p50 \d+ ms, p99 \d+ ms; \d+ steps, \d+% of them with all 2 streams; \d+\.\d+× tg3$`, out)
}
