package engine_test

import (
	"fmt"

	"github.com/vkrun/vkrun/engine"
	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/loader"
)

// gemma3Layers is Gemma 3's layer layout: 5 local layers of window w to 1
// global, by llama.cpp's period rule (layer l is local when l % 6 < 5).
func gemma3Layers(n, w int) []loader.LayerSpec {
	out := make([]loader.LayerSpec, n)
	for l := range out {
		out[l] = loader.LayerSpec{Window: w, RopeTheta: 10000, RopeScale: 1}
		if l%6 == 5 {
			out[l] = loader.LayerSpec{Window: 0, RopeTheta: 1e6, RopeScale: 8}
		}
	}
	return out
}

// llamaCppISWA is llama.cpp's iSWA cache for one sequence: every global
// layer holds the context, every local one PAD(min(ctx, W·nSeq + nUbatch),
// 256) cells (design.md §9), with nSeq 1 and llama.cpp's default nUbatch
// of 512.
func llamaCppISWA(layout []engine.LayerCache, context, window int) []engine.LayerCache {
	const nSeq, nUbatch, pad = 1, 512, 256
	cells := (min(context, window*nSeq+nUbatch) + pad - 1) / pad * pad
	out := make([]engine.LayerCache, len(layout))
	for l, c := range layout {
		out[l] = engine.LayerCache{Window: c.Window, Slots: context}
		if c.Local() {
			out[l].Slots = cells
		}
	}
	return out
}

// The KV cache of Gemma 3 4B (34 layers, 4 KV heads of 256, W = 1024,
// pattern 6) at a 32k context in f16: a full cache in every layer,
// llama.cpp's iSWA cache, and vkrun's, which keeps exactly the W keys each
// local layer attends to.
func ExampleKVBytes() {
	cfg := loader.Config{Arch: "gemma3", NumLayers: 34, NumKVHeads: 4, HeadDim: 256, Window: 1024, Layers: gemma3Layers(34, 1024)}
	const context = 32768
	kvDim := cfg.NumKVHeads * cfg.HeadDim
	ours, _, _ := engine.CacheLayout(cfg, context, 0)
	full := make([]engine.LayerCache, len(ours))
	for l := range full {
		full[l] = engine.LayerCache{Slots: context}
	}
	mib := func(layout []engine.LayerCache) string {
		n := engine.KVBytes(layout, kvDim, ops.KVF16)
		return fmt.Sprintf("%d bytes (%.0f MiB)", n, float64(n)/(1<<20))
	}
	fmt.Println("full cache:   ", mib(full))
	fmt.Println("llama.cpp iSWA:", mib(llamaCppISWA(ours, context, cfg.Window)))
	fmt.Println("vkrun:        ", mib(ours))
	// Output:
	// full cache:    4563402752 bytes (4352 MiB)
	// llama.cpp iSWA: 853540864 bytes (814 MiB)
	// vkrun:         792723456 bytes (756 MiB)
}
