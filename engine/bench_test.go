package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// benchConfig is the ~0.5B Mistral-shaped model of the engine issue: dim
// 2048, 8 layers, 32 heads with 8 KV heads, FFN 5632, vocab 32000.
func benchConfig(window int) loader.Config {
	return loader.Config{Arch: "llama", Dim: 2048, NumLayers: 8, NumHeads: 32, NumKVHeads: 8, HeadDim: 64,
		FFNDim: 5632, VocabSize: 32000, Window: window, RopeTheta: 10000, NormEps: 1e-5, ContextLength: 32768}
}

// benchTypes are the bench model's weights: one type throughout, or
// llama.cpp's Q4_K_M mix (Q4_K with Q6_K for output and for attn_v and
// ffn_down in layers 0, 3, 6 and 7; 4.99 bits per weight against Q4_0's 4.5).
var benchTypes = []string{"Q4_0", "Q4_K_M", "F16"}

// benchModel writes (once per machine, in the temp dir) and loads the bench
// model in weights (a type name, or a llama.cpp mix name).
func benchModel(b *testing.B, weights string, window int) (*vk.Device, *Model) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("vkrun-bench-0.5b-%s-w%d.gguf", weights, window))
	if _, err := os.Stat(path); err != nil {
		var dt loader.DType
		for _, t := range []loader.DType{loader.Q4_0, loader.F16} {
			if t.String() == weights {
				dt = t
			}
		}
		if dt == loader.Q4_0 || dt == loader.F16 {
			require.NoError(b, loader.WriteSynthetic(path, benchConfig(window), dt, 1, nil))
		} else {
			require.NoError(b, loader.WriteSyntheticMix(path, benchConfig(window), loader.QuantMix(weights), 1, nil))
		}
	}
	d := vktest.Device(b, vk.DeviceOptions{})
	lm, err := loader.Open(path, loader.WithoutTokenizer())
	require.NoError(b, err)
	defer lm.Close()
	m, err := Load(d, lm, Options{KV: ops.KVF16})
	require.NoError(b, err)
	b.Cleanup(func() { m.Close() })
	return d, m
}

// BenchmarkDecode reports greedy decode tok/s at position W and at 32·W: the
// rolling cache makes them equal. The session is positioned directly
// (s.pos) rather than by prefilling 32·W tokens: a step's work depends on
// its position only through the band, never on the cached values.
func BenchmarkDecode(b *testing.B) {
	const window = 4096
	for _, w := range benchTypes {
		b.Run(w, func(b *testing.B) { benchDecode(b, w, window) })
	}
}

func benchDecode(b *testing.B, weights string, window int) {
	_, m := benchModel(b, weights, window)
	for _, pos := range []int{window, 32 * window} {
		b.Run(fmt.Sprintf("pos=%d", pos), func(b *testing.B) {
			s, err := m.NewSession()
			require.NoError(b, err)
			defer s.Close()
			s.pos = pos
			tok := 100
			ctx := context.Background()
			tok, err = s.DecodeGreedy(ctx, tok) // records the step
			require.NoError(b, err)
			b.ResetTimer()
			for b.Loop() {
				if tok, err = s.DecodeGreedy(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkPrefill reports prompt tok/s for one chunk of 64 tokens (a size
// that keeps a run short on CPU devices; the matmuls batch 8 tokens per
// weight read, so larger chunks change the rate little).
func BenchmarkPrefill(b *testing.B) {
	const window, chunk = 4096, 64
	for _, w := range benchTypes {
		b.Run(fmt.Sprintf("%s/chunk=%d", w, chunk), func(b *testing.B) {
			_, m := benchModel(b, w, window)
			s, err := m.NewSession()
			require.NoError(b, err)
			defer s.Close()
			tokens := make([]int, chunk)
			for i := range tokens {
				tokens[i] = 3 + i%1000
			}
			ctx := context.Background()
			_, err = s.Prefill(ctx, tokens)
			require.NoError(b, err)
			b.ResetTimer()
			for b.Loop() {
				s.Reset()
				if _, err := s.Prefill(ctx, tokens); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
