#!/usr/bin/env bash
# gen-swa-golden.sh regenerates tests/testdata/swa/ with llama.cpp itself:
#
#   - scripts/gen-swa-golden/main.go writes small synthetic Gemma 2, Gemma 3
#     and Cohere2 GGUFs, a llama control, and the full-attention families
#     (Qwen 2.5, Qwen 3, Llama 3.1 RoPE factors, a llama head dim ≠ dim/heads)
#     with loader.WriteSynthetic, in F32 and Q8_0, and checks that what
#     llama.cpp computes from each file (its keys, defaults, optional tensors
#     and per-arch rules) is what the file's Config says;
#   - the llama.cpp that npm @node-llama-cpp/linux-x64@3.22.1 ships prebuilt
#     (libllama, libggml, the AVX2 CPU backend), called from node through the
#     koffi FFI (scripts/gen-swa-golden.mjs), runs each file on the CPU: a
#     40-token prompt in one batch with logits at every position, then 16
#     greedy tokens one at a time; it checks that llama.cpp's iSWA cache put
#     exactly the Config's local layers in its sliding-window half (and that
#     llama, qwen2 and qwen3 got no SWA at all), and the head size, rotated
#     dims, RoPE style and base llama.cpp reports;
#   - the .mjs writes tests/testdata/swa/llamacpp.json.gz.
#
# Needs: linux x64, node + npm (the npm registry), go. Tests never run this:
# they read the committed files. SWA_GOLDEN_VERBOSE=1 shows llama.cpp's whole log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/tests/testdata/swa"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pkg=@node-llama-cpp/linux-x64@3.22.1
koffi=koffi@2.16.3

# 1. The npm packages, into a scratch directory (prebuilt: no install scripts).
(cd "$tmp" && npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$tmp" "$pkg" "$koffi" >/dev/null)

# 2. The models, and what llama.cpp must understand from them.
work="$tmp/work"
(cd "$root" && go run ./scripts/gen-swa-golden/main.go write "$work")

# 3. llama.cpp runs them.
mkdir -p "$out"
node "$root/scripts/gen-swa-golden.mjs" "$tmp/node_modules" "$work" "$out"

field() { node -e 'const g=JSON.parse(require("zlib").gunzipSync(require("fs").readFileSync(process.argv[1])));console.log(g.llama_cpp[process.argv[2]])' "$out/llamacpp.json.gz" "$1"; }
commit=$(field commit)
cpu=$(field cpu_backend)
cat >"$out/SOURCES.md" <<MD
# SWA families: llama.cpp golden outputs

Regenerate with \`scripts/gen-swa-golden.sh\`. Everything in llamacpp.json.gz was computed by llama.cpp, commit
$commit, as npm $pkg ships it prebuilt (node-llama-cpp 3.22.1's platform package), called through npm $koffi,
on the CPU with its backend $cpu (2 threads; libggml-cpu-haswell.so is the AVX2 build, the default). The exact llama.cpp source of that build is
the git bundle \`llama/gitRelease.bundle\` in npm node-llama-cpp@3.22.1; the struct layouts the script uses are
that source's include/llama.h, checked against the library's own default parameters.

The models are synthetic (loader.WriteSynthetic with each variant's Config, weight type and seed; see
scripts/gen-swa-golden/main.go): dim 64, 6 layers, vocab 256, random weights (F32 norms and biases). Re-create a file with
\`loader.WriteSynthetic(path, config, type, seed, nil)\` and check its sha256 before comparing.

| variant | what |
|---|---|
| gemma2-f32, gemma2-q8_0 | Gemma 2: W=4, layers 0, 2, 4 local; attention soft-cap 2, final soft-cap 5; GQA 2:1 |
| gemma3-f32, gemma3-q8_0 | Gemma 3: W=3, layers 0–4 local (θ 1e4), layer 5 global (θ 1e6, linear RoPE scale 8); q/k norm; 4 heads of 32 on dim 64, one K/V head |
| cohere2-f32, cohere2-q8_0 | Cohere2: W=5, layers 0–2, 4, 5 local with RoPE, layer 3 global without; LayerNorm; parallel block; logit scale 0.25 |
| llama-f32 | control: llama without a window (llama.cpp's plain path, which vkrun already matches) |
| qwen2-f32, qwen2-q8_0 | Qwen 2.5 (qwen2): attn_q/k/v.bias added after each product; NEOX RoPE, θ 1e6; GQA 2:1; 4 heads of 16 = dim (llama.cpp's qwen2 needs heads·head dim = dim); eps 1e-6 |
| qwen3-f32 | Qwen 3 (qwen3): per-head RMSNorm of q and k (attn_q_norm, attn_k_norm) before RoPE, no biases; NEOX RoPE, θ 1e6; 4 heads of 32 on dim 64 (head dim ≠ dim/heads), 2 K/V heads |
| llama3-rope-f32 | Llama 3.1 RoPE scaling: rope_freqs.weight divides pair i's frequency by 1, 1, 1.25, 4, 8, 8, 8, 8 (pairs 0–7 of a 16-wide head), θ 5e5; NORM RoPE |
| llama-headdim-f32 | llama with attention.key_length 32 on 4 heads and dim 64 (Mistral Nemo's head dim ≠ dim/heads; attn_q {64, 128}), GQA 2:1, θ 1e6 |

\`{llama_cpp: {package, commit, release, ggml_version, ggml_commit, cpu_backend, backend_log}, params: {model,
context, decode, greedy}, prompt_rule, variants: [...]}\`, each variant
\`{name, why, arch, config, type, seed, sha256, size, prompt, logits, greedy, greedy_margin, hparams_log, cache_log,
swa_layers, metadata, model_desc, context}\`:

- \`config\`: the loader.Config the file was written from, as encoding/json writes it (unmarshal it into loader.Config).
- \`type\`: the matrices' type (DType.String()); norms are F32.
- \`prompt\`: 40 ids, BOS first (\`prompt_rule\` says how they were drawn).
- \`logits\`: little-endian float32, base64, (40 positions × 256), from one llama_decode of the whole prompt.
- \`greedy\`: 16 ids: the argmax of the last prompt position, then of each single-token decode of the previous id
  (no stop at EOS); \`greedy_margin\`: at each step the gap between the largest and the second-largest logit
  (a small gap is a near-tie that another implementation's rounding may flip).
- \`context\`: the n_ctx, n_batch and n_ubatch llama.cpp actually used (it pads n_ctx to 256).
- \`hparams_log\`: llama.cpp's print_info lines (what it understood: n_swa, head dims, RoPE bases and scales);
  \`swa_layers\` the layers its iSWA cache put in the sliding-window cache (from its llama_kv_cache log, also in
  \`cache_log\`); \`metadata\` the values it read for the keys that print_info does not show (soft-caps, logit
  scale, patterns), as llama_model_meta_val_str formats them.

None of llama, qwen2 and qwen3 has SWA in llama.cpp (it reads no window key for them): \`swa_layers\` is empty and
the whole prompt is attended. Q/K/V biases (every arch here) and rope_freqs.weight (llama only) are optional
tensors that llama.cpp uses whenever a file has them, and it refuses a file with a tensor it did not create, so a
file it loaded had each of them used; the factors are F32 {n_rot/2}, and every layer's RoPE divides pair i's
frequency by factor i (get_rope_factors).

Windows: llama.cpp masks key j from query i when i − j ≥ W (is_masked_swa), the W-keys rule of design.md §3. It pads
n_ctx 64 to 256 cells, so both halves of its iSWA cache (swa_full off) hold every position here and the window is
enforced by that mask, not by eviction.

Numerics to allow for: the KV cache is F32 and flash attention is off, but ggml's CPU GELU goes through an f16
table (the gate input is rounded to f16, the result is an f16 value), and with Q8_0 weights ggml quantises the
activations to Q8_0 before each product.
MD
echo "gen-swa-golden: wrote $out ($(du -sh "$out" | cut -f1))" >&2
