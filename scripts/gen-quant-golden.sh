#!/usr/bin/env bash
# gen-quant-golden.sh regenerates loader/testdata/quant/ with llama.cpp itself:
#
#   - scripts/gen-quant-golden/main.go writes small all-F32 llama models with
#     deterministic pseudo-random weights (our GGUF writer), in shapes that
#     exercise llama.cpp's type-selection rules (layer counts for
#     use_more_bits and the 70B rule, GQA, tied embeddings, rows that are not
#     a multiple of 256);
#   - the llama.cpp that npm @node-llama-cpp/linux-x64@3.22.1 ships prebuilt
#     (node-llama-cpp's platform package: libllama, libggml-base), called from
#     node through the koffi FFI (scripts/gen-quant-golden.mjs), quantises
#     each model to 18 file types with llama_model_quantize (no imatrix);
#   - main.go collect records every tensor's type in every file
#     (mixes.json.gz), and one tensor slice per block type as llama.cpp wrote
#     it with its f32 source (blocks.json.gz), which the .mjs completes with
#     ggml's own dequantisation of those bytes (dequantize_row_*) and the
#     NMSE llama.cpp achieved.
#
# Needs: linux x64, node + npm (the npm registry), go. Tests never run this:
# they read the committed files.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/loader/testdata/quant"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pkg=@node-llama-cpp/linux-x64@3.22.1
koffi=koffi@2.16.3

# 1. The npm packages, into a scratch directory (prebuilt: no install scripts).
(cd "$tmp" && npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$tmp" "$pkg" "$koffi" >/dev/null)

# 2. The F32 models.
work="$tmp/work"
(cd "$root" && go run ./scripts/gen-quant-golden/main.go write "$work")

# 3. llama.cpp quantises them (its log is long; shown only on failure).
if ! node "$root/scripts/gen-quant-golden.mjs" quantize "$tmp/node_modules" "$work" >"$tmp/quantize.log" 2>&1; then
  tail -40 "$tmp/quantize.log" >&2
  echo "gen-quant-golden: llama_model_quantize failed" >&2
  exit 1
fi
echo "gen-quant-golden: llama.cpp fell back to another type $(grep -c 'falling back' "$tmp/quantize.log") times" >&2

# 4. Collect the mixes and the block slices; ggml dequantises the slices.
mkdir -p "$out"
(cd "$root" && go run ./scripts/gen-quant-golden/main.go collect "$work" "$out")
node "$root/scripts/gen-quant-golden.mjs" dequantize "$tmp/node_modules" "$work" "$out" >&2

version=$(sed -n 's/.*"llama_cpp_commit": "\(.*\)".*/\1/p' "$work/run.json")
cat >"$out/SOURCES.md" <<MD
# Quantisation golden data

Regenerate with \`scripts/gen-quant-golden.sh\`. Everything here was written by llama.cpp, commit $version, as npm
$pkg ships it prebuilt (node-llama-cpp 3.22.1's platform package), called through npm $koffi.
No importance matrix was used. The input models are small all-F32 llama GGUFs with pseudo-random weights
(scripts/gen-quant-golden/main.go).

| file | what |
|---|---|
| mixes.json.gz | \`{llama_cpp, variants: [{name, why, layers, dim, ffn, heads, kv_heads, vocab, output, tensors: [{name, shape}], types: {FTYPE: [type per tensor]}}]}\`: the type llama_model_quantize wrote for every tensor of every variant, for each of the file types Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS BF16 F16. \`output: false\` means the model has no output.weight. |
| blocks.json.gz | \`{llama_cpp, variant, tensor, rows, cols, f32, blocks: [{type, ftype, data, ggml_f32, ggml_nmse, ref_identical}]}\`: the first \`rows\` rows of \`tensor\` in variant \`variant\`; \`f32\` is the source (little-endian float32, base64), \`data\` the bytes llama.cpp wrote for block type \`type\` in its \`ftype\` file, \`ggml_f32\` ggml's dequantize_row_* of \`data\`, \`ggml_nmse\` the mean over rows that are not all zero of Σ(ggml_f32−f32)²/Σf32², \`ref_identical\` whether \`data\` equals ggml's quantize_row_*_ref of \`f32\`. |
MD
echo "gen-quant-golden: wrote $out ($(du -sh "$out" | cut -f1))" >&2
