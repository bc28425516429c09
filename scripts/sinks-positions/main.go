//go:build ignore

// Command main measures the RoPE positions of attention sinks (issue 14) on
// stories260K with the CPU reference (engine/ref): the perplexity of every
// 256-token segment of the committed long text
// (tests/testdata/sinks/stories.json) with full attention, and with windows
// of 32 and 64 alone and beside 1, 2 and 4 sinks, each in both position
// modes: absolute positions (ref.AbsolutePositions) and StreamingLLM's
// positions within the cache (ref.CachePositions, which won and is what the
// GPU engine does with sinks). It prints the table in Markdown, then the
// perplexity over the first and the second half of the text, and how far
// the runs in the GPU's mode are from the GPU's golden
// (tests/testdata/sinks/perplexity.json).
//
//	go run ./scripts/sinks-positions/main.go [-text FILE] [-golden FILE] [-j N]
//
// Run it from the repository root. It takes a minute or two on two cores.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/vkrun/vkrun/engine/ref"
	"github.com/vkrun/vkrun/internal/modeldir"
	"github.com/vkrun/vkrun/loader"
)

// segment is the length of the text's pieces that are scored separately,
// as TestSinksPerplexity does.
const segment = 256

// run is one way to attend over the text.
type run struct {
	window int // 0: full attention
	sinks  int
	mode   ref.Positions
	ppl    []float64 // per segment
	nll    []float64 // per predicted position p ≥ 1: −log P(ids[p] | ids[:p])
}

// name is the run's column head: "full", "W32", "W32+2 abs", "W32+2 cache".
func (r *run) name() string {
	if r.window == 0 {
		return "full"
	}
	n := fmt.Sprintf("W%d", r.window)
	if r.sinks > 0 {
		n += fmt.Sprintf("+%d", r.sinks)
	}
	if r.mode == ref.CachePositions {
		return n + " cache"
	}
	return n + " abs"
}

func main() {
	textPath := flag.String("text", "tests/testdata/sinks/stories.json", "the token ids to score (gen-sinks-text's output)")
	goldenPath := flag.String("golden", "tests/testdata/sinks/perplexity.json", "the GPU's perplexity golden to compare with (\"\" for none)")
	jobs := flag.Int("j", runtime.NumCPU(), "runs at once")
	flag.Parse()
	if err := measure(*textPath, *goldenPath, *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "sinks-positions:", err)
		os.Exit(1)
	}
}

func measure(textPath, goldenPath string, jobs int) error {
	raw, err := os.ReadFile(textPath)
	if err != nil {
		return err
	}
	var text struct {
		SHA256 string `json:"model_sha256"`
		IDs    []int  `json:"ids"`
	}
	if err := json.Unmarshal(raw, &text); err != nil {
		return fmt.Errorf("%s: %w", textPath, err)
	}
	if len(text.IDs) < 2 {
		return fmt.Errorf("%s: %d tokens, want at least 2", textPath, len(text.IDs))
	}
	path := modeldir.Stories260K()
	model, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (scripts/setup.sh downloads it)", err)
	}
	if sum := sha256.Sum256(model); hex.EncodeToString(sum[:]) != text.SHA256 {
		return fmt.Errorf("%s is not the model %s was sampled from (sha256 %s, want %s)", path, textPath, hex.EncodeToString(sum[:]), text.SHA256)
	}

	runs := []*run{{}}
	for _, w := range []int{32, 64} {
		for _, mode := range []ref.Positions{ref.AbsolutePositions, ref.CachePositions} {
			for _, sinks := range []int{0, 1, 2, 4} {
				runs = append(runs, &run{window: w, sinks: sinks, mode: mode})
			}
		}
	}
	// Each run loads its own model (a different window) and scores the
	// whole text; jobs of them at once.
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, jobs))
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := score(path, text.IDs, r); err != nil {
				errs[i] = fmt.Errorf("%s: %w", r.name(), err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	printTable(os.Stdout, runs, len(text.IDs))
	if goldenPath != "" {
		return compareGolden(goldenPath, runs)
	}
	return nil
}

// score runs the reference over ids under r's window, sinks and positions
// and fills r.nll and r.ppl.
func score(path string, ids []int, r *run) error {
	lm, err := loader.Open(path, loader.WithWindow(r.window))
	if err != nil {
		return err
	}
	m, err := ref.Load(lm)
	lm.Close()
	if err != nil {
		return err
	}
	m.Sinks, m.Positions = r.sinks, r.mode
	logits, err := m.Forward(ids)
	if err != nil {
		return err
	}
	r.nll = make([]float64, len(ids))
	for p := 1; p < len(ids); p++ {
		r.nll[p] = -logProb(logits[p-1], ids[p])
	}
	// Segment k scores the tokens at positions [k·256, (k+1)·256), each
	// predicted from the logits before it (position 0 has none).
	for lo := 0; lo < len(ids); lo += segment {
		r.ppl = append(r.ppl, perplexity(r.nll, max(1, lo), min(len(ids), lo+segment)))
	}
	return nil
}

// perplexity is exp of the mean of nll[lo:hi].
func perplexity(nll []float64, lo, hi int) float64 {
	var sum float64
	for _, v := range nll[lo:hi] {
		sum += v
	}
	return math.Exp(sum / float64(hi-lo))
}

// logProb is log softmax(logits)[id], in float64.
func logProb(logits []float32, id int) float64 {
	top := float64(slices.Max(logits))
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - top)
	}
	return float64(logits[id]) - top - math.Log(sum)
}

// printTable writes the per-segment table in Markdown, one row per
// segment and one column per run, then the perplexity of each half of the
// text.
func printTable(w *os.File, runs []*run, n int) {
	var b strings.Builder
	b.WriteString("| tokens |")
	for _, r := range runs {
		fmt.Fprintf(&b, " %s |", r.name())
	}
	b.WriteString("\n|---|")
	for range runs {
		b.WriteString("---:|")
	}
	cell := func(v float64) string {
		if v >= 100 {
			return fmt.Sprintf(" %.0f |", v)
		}
		return fmt.Sprintf(" %.2f |", v)
	}
	for k := range runs[0].ppl {
		fmt.Fprintf(&b, "\n| %d–%d |", k*segment, min(n, (k+1)*segment)-1)
		for _, r := range runs {
			b.WriteString(cell(r.ppl[k]))
		}
	}
	half := n / 2
	for _, h := range [][2]int{{1, half}, {half, n}} {
		fmt.Fprintf(&b, "\n| **%d–%d** |", h[0], h[1]-1)
		for _, r := range runs {
			b.WriteString(cell(perplexity(r.nll, h[0], h[1])))
		}
	}
	fmt.Fprintf(w, "Perplexity of stories260K per %d-token segment (engine/ref, float64 accumulation; abs: absolute RoPE positions, cache: positions within the cache)\n\n%s\n", segment, b.String())
}

// compareGolden prints, for each run of the GPU's golden that this table
// has (in the GPU's mode: cache positions with sinks, absolute without,
// which are the same positions then), the largest relative difference per half of
// the text: the reference and the GPU should agree closely where the
// model is in its depth, and only roughly where it diverges.
func compareGolden(path string, runs []*run) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var golden struct {
		Runs []struct {
			Window int       `json:"window"`
			Keep   int       `json:"keep"`
			PPL    []float64 `json:"ppl"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Printf("\nAgainst the GPU's golden (%s): the largest |ref/gpu − 1| over segments 0–7 and 8–15\n\n", path)
	for _, g := range golden.Runs {
		mode := ref.AbsolutePositions
		if g.Keep > 0 {
			mode = ref.CachePositions
		}
		for _, r := range runs {
			if r.window != g.Window || r.sinks != g.Keep || r.mode != mode || len(r.ppl) != len(g.PPL) {
				continue
			}
			var early, late float64
			for k, v := range g.PPL {
				d := math.Abs(r.ppl[k]/v - 1)
				if k < len(g.PPL)/2 {
					early = max(early, d)
				} else {
					late = max(late, d)
				}
			}
			fmt.Printf("- %s: %.4f, %.4f\n", r.name(), early, late)
		}
	}
	return nil
}
