#!/usr/bin/env bash
# gen-tokenizer-golden.sh regenerates loader/testdata/tokenizer/ from
# implementations we did not write:
#
#   - npm llama-tokenizer-js@1.2.2 and mistral-tokenizer-js@1.0.0: their vocab
#     and merge lists become <name>.tokenizer.json.gz (Hugging Face format), and
#     their testCase vectors and encoders give expected ids;
#   - llama2.c's tokenizer.bin, shipped in the Go module
#     github.com/nikolaydubina/llama2.go@v0.7.1 (downloaded, never imported);
#   - Debian's sentencepiece (spm_train, spm_encode, python3-sentencepiece):
#     SentencePiece itself encodes every text on every vocabulary, and trains
#     the small spm-bpe model;
#   - stories260K.gguf's vocabulary (scripts/setup.sh fetches the model).
#
# Needs: node + npm, go, python3 with sentencepiece and protobuf:
#   apt-get install -y sentencepiece python3-sentencepiece python3-protobuf
# `go test ./loader -run TestTokenizerGolden -update` runs this script.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/loader/testdata/tokenizer"
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" -c 'import sentencepiece, google.protobuf' 2>/dev/null || {
  echo "gen-tokenizer-golden: $py lacks sentencepiece/protobuf (apt-get install -y sentencepiece python3-sentencepiece python3-protobuf)" >&2
  exit 1
}

# 1. The npm packages, into a scratch directory.
(cd "$tmp" && npm install --silent --no-audit --no-fund --prefix "$tmp" \
  llama-tokenizer-js@1.2.2 mistral-tokenizer-js@1.0.0 >/dev/null)
node "$root/scripts/gen-tokenizer-golden.mjs" "$tmp/node_modules" "$out" "$tmp" "$out/texts.json"

# 2. llama2.c's tokenizer.bin from the Go module cache.
want_bin=74f899535f8f99cdeac697474b697f3fa40467b8376dab7b6c4d8c753f28ae9f
moddir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json github.com/nikolaydubina/llama2.go@v0.7.1 |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
bin="$moddir/tokenizer.bin"
got=$(sha256sum "$bin" | cut -d' ' -f1)
if [ "$got" != "$want_bin" ]; then
  echo "gen-tokenizer-golden: tokenizer.bin has sha256 $got, want $want_bin" >&2
  exit 1
fi
gzip -9nc "$bin" >"$out/llama2c-tokenizer.bin.gz"

# 3. stories260K.gguf (for its tok512 vocabulary).
model_dir="${VKRUN_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vkrun/models}"
gguf="$model_dir/stories260K.gguf"
[ -f "$gguf" ] || SKIP_APT=1 "$root/scripts/setup.sh"

# 4. SentencePiece on everything.
"$py" "$root/scripts/gen-tokenizer-golden.py" "$tmp" "$out" "$out/texts.json" "$bin" "$gguf"

cat >"$out/SOURCES.md" <<MD
# Tokenizer golden data

Regenerate with \`scripts/gen-tokenizer-golden.sh\` (or \`go test ./loader -run TestTokenizerGolden -update\`).
Every expected id here comes from an implementation we did not write.

| file | what | from |
|---|---|---|
| texts.json | hand-written hard cases (input, edited by hand) | |
| llama2.tokenizer.json.gz | Llama-2 vocab + 61249 merges as an HF tokenizer.json | npm llama-tokenizer-js@1.2.2 |
| mistral.tokenizer.json.gz | Mistral-7B vocab + 58980 merges as an HF tokenizer.json | npm mistral-tokenizer-js@1.0.0 |
| llama2c-tokenizer.bin.gz | llama2.c tokenizer.bin (Llama-2 pieces + SentencePiece scores), sha256 of the uncompressed file $want_bin | Go module github.com/nikolaydubina/llama2.go@v0.7.1 |
| tok512.vocab.json | tokenizer.ggml.* of stories260K.gguf | scripts/setup.sh's model |
| cases.json | llama2, mistral, tok512: {text, ids, refs}; ids by SentencePiece; refs lists every reference that agrees, disagree any that does not | sentencepiece $("$py" -c 'import sentencepiece; print(sentencepiece.__version__)'), the npm packages' testCase vectors and encoders |
| spm-bpe.vocab.json, spm-bpe.cases.json | a 1500-piece BPE model trained by spm_train on GOROOT/doc/go_spec.html, and its encoding of held-out lines of go_mem.html plus texts.json | sentencepiece (spm_train, spm_encode, python API) |

The byte-level BPE data (bpe-*, ggml-vocab-gpt-2.gguf.gz, *.tokenizer-pipeline.json) come from
scripts/gen-bpe-golden.sh; SOURCES-bpe.md lists them.
MD
echo "gen-tokenizer-golden: wrote $out" >&2
