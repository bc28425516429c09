// Package vkrun runs Mistral-style language models on any Vulkan GPU, with
// real sliding-window attention and a rolling KV cache: memory and per-token
// cost stay flat however long the text grows.
//
//	m, err := vkrun.Load(ctx, "mistral-7b-v0.1.Q4_0.gguf", vkrun.WithWindow(4096))
//	if err != nil { … }
//	defer m.Close()
//	s, _ := m.NewSession()
//	for tok, err := range s.Generate(ctx, "The capital of France is", vkrun.WithMaxTokens(32)) {
//		if err != nil { … }
//		fmt.Print(tok.Text)
//	}
//
// A Model is loaded once onto a device (chosen automatically, by
// WithDevice, or handed in as raw handles with WithVulkan) and shared by its
// Sessions, which may run on different goroutines. Each Session has its own
// ring cache, and a later Generate continues the same text or conversation
// without prefilling it again.
package vkrun
