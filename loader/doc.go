// Package loader reads and writes model files and turns them into what the
// engine needs: a Config, named weight tensors and a Tokenizer. It knows
// nothing about Vulkan.
//
// Formats:
//   - GGUF v2/v3 (llama.cpp): Open maps the file read-only and every
//     Tensor's Bytes is a zero-copy view into the mapping, so opening a
//     multi-GiB model allocates almost nothing on the Go heap.
//   - Hugging Face safetensors directories (config.json + *.safetensors):
//     Open normalises them to GGUF conventions (tensor names, innermost-first
//     shapes, pairwise RoPE).
//
// Both give the GGUF llama conventions: shapes innermost first (a torch
// (out, in) matrix is {in, out}), tensors named token_embd.weight,
// blk.N.attn_q.weight, …, RoPE over consecutive pairs for llama and
// mistral (Gemma GGUFs keep their rotate-half RoPE: Config.Rope).
//
// Archs: llama and mistral, and the sliding-window families gemma2, gemma3
// and cohere2, each read with llama.cpp's key names, defaults and layer
// patterns (Config.Layers: every layer's window and RoPE; layers.go), and
// with its tensors (post norms, q/k norms; no ffn_norm in cohere2). A llama
// file may give a per-layer pattern in <arch>.attention.sliding_window_pattern,
// an HF config.json in layer_types or sliding_window_pattern.
//
// Tokenizers: SentencePiece vocabularies (GGUF "llama", HF Metaspace) and
// byte-level BPE (GGUF "gpt2", HF ByteLevel) with the pre-tokenizers that
// llama.cpp names (llama-bpe, tekken, qwen2, gpt-2, gpt-4o, default, …;
// pretok.go), checked against golden data from llama.cpp, Hugging Face
// tokenizers and tiktoken. LoadTokenizer reads a vocab-only file.
//
// Dequantize and Quantize are plain-Go references for the block formats
// (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K … Q6_K, IQ4_XS, F16, BF16);
// dequantization matches ggml bit for bit and is what GPU kernels are
// tested against. GGUFWriter and WriteSynthetic create GGUF files, from small test
// fixtures to random models of Mistral-7B shape streamed to disk.
//
// Every size read from a file is checked against the file's length before
// anything is allocated, so a malformed or hostile file yields an error
// (*FormatError, naming the file, offset and field), never a panic or a
// huge allocation.
package loader
