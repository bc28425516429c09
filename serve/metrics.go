package serve

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vkrun/vkrun"
)

// histogram is a Prometheus histogram: cumulative counts per upper bound.
type histogram struct {
	bounds []float64 // seconds, ascending; +Inf is implied
	counts []uint64  // observations ≤ bounds[i] and > bounds[i-1]; the last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // the first bound ≥ v
	h.counts[i]++
	h.sum += v
	h.n++
}

func (h *histogram) write(w io.Writer, name, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var c uint64
	for i, b := range h.bounds {
		c += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{le=%q} %d\n", name, strconv.FormatFloat(b, 'g', -1, 64), c)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, h.n, name, strconv.FormatFloat(h.sum, 'g', -1, 64), name, h.n)
}

// metrics are the handler's own counters; the batch's come from its Stats.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // endpoint, status code
	ttft     *histogram
	perToken *histogram
}

func newMetrics() *metrics {
	return &metrics{
		requests: map[[2]string]uint64{},
		ttft:     newHistogram(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
		perToken: newHistogram(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
	}
}

func (m *metrics) request(endpoint string, code int) {
	m.mu.Lock()
	m.requests[[2]string{endpoint, strconv.Itoa(code)}]++
	m.mu.Unlock()
}

// sequence records a sequence's time to first token.
func (m *metrics) sequence(r vkrun.Result) {
	if r.Tokens == 0 {
		return
	}
	m.mu.Lock()
	m.ttft.observe(r.TTFT.Seconds())
	m.mu.Unlock()
}

// gapTimer returns a function to call on each token of one sequence; it
// records the time between generated tokens.
func (m *metrics) gapTimer() func(vkrun.Token) {
	var last time.Time
	return func(t vkrun.Token) {
		if t.ID < 0 {
			return
		}
		now := time.Now()
		if !last.IsZero() {
			m.mu.Lock()
			m.perToken.observe(now.Sub(last).Seconds())
			m.mu.Unlock()
		}
		last = now
	}
}

// write prints every metric in Prometheus' text format; st is nil while
// the model loads.
func (m *metrics) write(w io.Writer, st *vkrun.BatchStats, ready bool) {
	gauge := func(name, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	counter := func(name, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %v\n", name, help, name, name, v)
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	gauge("vkrun_ready", "1 when the server answers requests (loaded, device not lost, not shutting down).", b2i(ready))

	m.mu.Lock()
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	fmt.Fprintf(w, "# HELP vkrun_requests_total HTTP requests answered, by endpoint and status code.\n# TYPE vkrun_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(w, "vkrun_requests_total{endpoint=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	m.ttft.write(w, "vkrun_time_to_first_token_seconds", "Time from a request's submission to its first generated token (queue and prefill included).")
	m.perToken.write(w, "vkrun_time_per_output_token_seconds", "Time between two generated tokens of one sequence.")
	m.mu.Unlock()

	if st == nil {
		return
	}
	counter("vkrun_prompt_tokens_total", "Prompt tokens fed.", st.PromptTokens)
	counter("vkrun_generated_tokens_total", "Tokens generated.", st.GeneratedTokens)
	counter("vkrun_decode_steps_total", "Forward passes that produced tokens; generated tokens / steps is the mean batch size.", st.Steps)
	writeStepSizes(w, st.StepSizes)
	fmt.Fprintf(w, "# HELP vkrun_sequences_total Sequences ended, by how.\n# TYPE vkrun_sequences_total counter\n")
	fmt.Fprintf(w, "vkrun_sequences_total{result=\"served\"} %d\nvkrun_sequences_total{result=\"cancelled\"} %d\nvkrun_sequences_total{result=\"failed\"} %d\n", st.Served, st.Cancelled, st.Failed)
	gauge("vkrun_slots", "Sequences that can run at once.", st.Slots)
	gauge("vkrun_sequences_active", "Sequences holding a slot.", st.Active)
	gauge("vkrun_sequences_queued", "Sequences waiting for a slot.", st.Queued)
	fmt.Fprintf(w, "# HELP vkrun_device_memory_bytes Memory vkrun holds on the GPU (weights, KV caches, activations), by memory kind.\n# TYPE vkrun_device_memory_bytes gauge\n")
	fmt.Fprintf(w, "vkrun_device_memory_bytes{memory=\"device\"} %d\nvkrun_device_memory_bytes{memory=\"host\"} %d\n", st.DeviceBytes, st.HostBytes)
	gauge("vkrun_device_lost", "1 after the GPU was lost.", b2i(st.DeviceLost))
}

// writeStepSizes prints the batch size per step as a histogram: one bucket
// per size 1..slots, from BatchStats.StepSizes (StepSizes[k]: the steps that
// carried k sequences).
func writeStepSizes(w io.Writer, sizes []uint64) {
	const name = "vkrun_batch_size"
	fmt.Fprintf(w, "# HELP %s Sequences carried by each decode step.\n# TYPE %s histogram\n", name, name)
	var c, sum uint64
	for k, n := range sizes {
		c += n
		sum += uint64(k) * n
		if k > 0 { // a step of 0 sequences counts in le="1", as ≤ 1
			fmt.Fprintf(w, "%s_bucket{le=\"%d\"} %d\n", name, k, c)
		}
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %d\n%s_count %d\n", name, c, name, sum, name, c)
}
