#!/usr/bin/env bash
# mesa-next.sh runs the cooperative-matrix tests on a newer Mesa's lavapipe.
#
# Debian bookworm's lavapipe (Mesa 22.3), which `make test` runs on, has no
# cooperative matrices, so the VK_KHR_cooperative_matrix kernels would only
# ever run on a GPU. Debian sid's lavapipe (Mesa 26.2 when this was
# written) implements VK_KHR_cooperative_matrix. This script downloads sid's lavapipe, Vulkan
# loader and validation layers with the libraries they need (glibc
# included) and unpacks them into a directory of its own: nothing is
# installed, and the system's Vulkan is untouched. The tests then run under
# sid's dynamic loader with only that driver and layer.
#
#   scripts/mesa-next.sh fetch   # download and unpack (quick when present)
#   scripts/mesa-next.sh test    # fetch, validate the KHR modules with sid's
#                                # spirv-val, run the cooperative-matrix tests
#   scripts/mesa-next.sh run CMD # run CMD (a binary and its arguments) there
#
# Where sid cannot be fetched (no network, a broken sid day), `test` says so
# and exits 0: the tests it would run are a bonus over `make test`'s, whose
# own cooperative-matrix tests skip on bookworm's lavapipe and say why. Where
# it can, every test must pass.
#
# VKRUN_MESA_NEXT_DIR (default ~/.cache/vkrun/mesa-next) holds the files;
# MESA_NEXT_SUITE (default sid) is the Debian suite.
set -euo pipefail

dir=${VKRUN_MESA_NEXT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vkrun/mesa-next}
suite=${MESA_NEXT_SUITE:-sid}
root=$dir/root
lib=$root/usr/lib/x86_64-linux-gnu
pkgs=(mesa-vulkan-drivers libvulkan1 vulkan-validationlayers spirv-tools)

fetch() {
	if [ -f "$dir/ok" ] && [ -n "$(find "$dir/ok" -mtime -7 2>/dev/null)" ]; then
		return 0 # fetched less than a week ago
	fi
	# Only what this script writes, in case $dir is a directory of the user's.
	rm -rf "$dir/lists" "$dir/cache" "$dir/debs" "$root" "$dir/empty" "$dir/bin" "$dir/ok" "$dir/sources.list" "$dir/apt.log"
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/debs" "$root"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >"$dir/sources.list"
	local o=(-q -oDir::Etc::SourceList="$dir/sources.list" -oDir::Etc::SourceParts=/nonexistent
		-oDir::State::Lists="$dir/lists" -oDir::Cache="$dir/cache" -oDir::State::status=/dev/null
		-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oAPT::Sandbox::User=root)
	# (Each step checks its own status: set -e does not hold inside a
	# function that `if` calls.)
	apt-get "${o[@]}" update >"$dir/apt.log" 2>&1 || return 1
	# The packages and everything they depend on, less what only installing
	# them would need (maintainer scripts' tools).
	local want
	want=$(apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances --no-pre-depends "${pkgs[@]}" 2>>"$dir/apt.log" |
		grep -v '^ ' | grep -v '^<' | sort -u |
		grep -v -E '^(debconf|perl|perl-base|perl-modules.*|libperl.*|dpkg|base-files|tar|coreutils|bash|sensible-utils|debianutils|init-system-helpers|usrmerge)$') || return 1
	(cd "$dir/debs" && apt-get "${o[@]}" download $want >>"$dir/apt.log" 2>&1) || return 1
	for d in "$dir"/debs/*.deb; do
		dpkg-deb -x "$d" "$root" || return 1
	done
	[ -x "$lib/ld-linux-x86-64.so.2" ] && [ -f "$lib/libvulkan_lvp.so" ] && [ -f "$lib/libVkLayer_khronos_validation.so" ] && [ -x "$root/usr/bin/spirv-val" ] || {
		echo "mesa-next: $suite's packages lack the loader, lavapipe, the validation layer or spirv-val" >&2
		return 1
	}
	# lavapipe's manifest names the library by its installed path.
	sed -i "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib/libvulkan_lvp.so\"#" "$root/usr/share/vulkan/icd.d/lvp_icd.json" || return 1
	mkdir -p "$dir/empty" || return 1
	date -u >"$dir/ok"
}

# run CMD...: CMD under sid's glibc, with lavapipe as the only driver and
# sid's layers as the only layers (no implicit layer from the system).
run() {
	env VK_ICD_FILENAMES="$root/usr/share/vulkan/icd.d/lvp_icd.json" \
		VK_DRIVER_FILES="$root/usr/share/vulkan/icd.d/lvp_icd.json" \
		VK_LAYER_PATH="$root/usr/share/vulkan/explicit_layer.d" \
		XDG_DATA_DIRS="$dir/empty" XDG_CONFIG_DIRS="$dir/empty" \
		"$lib/ld-linux-x86-64.so.2" --library-path "$lib:$root/lib/x86_64-linux-gnu" "$@"
}

# The tests that run on the device's cooperative matrices, package by
# package (their emulated variants run in make test already).
tests=(
	"./vk ^TestCooperativeMatrix$"
	"./engine/ops ^(TestMatMulCoopMat|TestAttentionCoopMat)$/^khr$"
	"./engine/ops ^TestCheckCoopMat$"
	"./tests ^TestStories260KCoopMatPrefill$/^device$"
	"./tests ^TestCoopMatPrefillLogits$//^device$"
)

test_() {
	cd "$(dirname "$0")/.."
	if ! fetch; then
		echo "mesa-next: SKIP: could not fetch Debian $suite's lavapipe (see $dir/apt.log); the VK_KHR_cooperative_matrix kernels did not run" >&2
		return 0
	fi
	local bin=$dir/bin n=0 stamp
	mkdir -p "$bin"
	stamp=$(date +%s.%N) # this run's test binaries
	local mesa
	mesa=$(basename "$(ls "$dir"/debs/mesa-vulkan-drivers_*.deb)" .deb)
	echo "mesa-next: lavapipe from Debian $suite: $mesa"
	# bookworm's spirv-val does not know the KHR opcodes; sid's does.
	local m
	for m in shaders/spv/*_khr*.spv; do
		run "$root/usr/bin/spirv-val" --target-env vulkan1.1 "$m" || {
			echo "mesa-next: FAIL: $suite's spirv-val rejects $m" >&2
			return 1
		}
	done
	echo "mesa-next: $suite's spirv-val passes $(ls shaders/spv/*_khr*.spv | wc -l) VK_KHR_cooperative_matrix modules"
	for t in "${tests[@]}"; do
		local pkg=${t%% *} pat=${t#* }
		local name log
		name=$(basename "$pkg")
		log=$bin/$name.$((n++)).log
		[ -x "$bin/$name.test" ] && [ "$(cat "$bin/$name.built" 2>/dev/null)" = "$stamp" ] ||
			{ go test -c -o "$bin/$name.test" "$pkg" && echo "$stamp" >"$bin/$name.built"; }
		echo "mesa-next: $pkg -run '$pat'"
		# The test binaries run in their package's directory, as go test runs them.
		(cd "$pkg" && VKRUN_VALIDATE=1 run "$bin/$name.test" -test.run "$pat" -test.count=1 -test.v) >"$log" 2>&1 || {
			tail -50 "$log"
			echo "mesa-next: FAIL: $pkg -run '$pat' (the whole log: $log)" >&2
			return 1
		}
		grep -E '^(--- |    --- |ok|PASS|FAIL)' "$log" | grep -v -E '^        ' || true
		if grep -q -E -- '--- SKIP' "$log"; then
			echo "mesa-next: FAIL: a VK_KHR_cooperative_matrix test skipped on a lavapipe that has the extension" >&2
			return 1
		fi
	done
}

case "${1:-test}" in
fetch) fetch ;;
test) test_ ;;
run)
	shift
	fetch
	run "$@"
	;;
*)
	echo "usage: $0 fetch|test|run CMD..." >&2
	exit 2
	;;
esac
