#!/usr/bin/env bash
# gpu-bench.sh: the device check of the GPU layout's kernels and of batched
# decode, prepared to run as one command on a lent machine that has a GPU
# but no Go toolchain and no network.
#
#   scripts/gpu-bench.sh prepare   here, with Go: build bin/vkrun and
#                                  bin/ops.test (linux/amd64), fetch the
#                                  Vulkan loader's .debs into .gl/, and print
#                                  the device command and what it carries.
#   scripts/gpu-bench.sh run       there: install the loader from .gl/, then
#                                  run the parts below, each under its own
#                                  time cap, writing logs and JSON to $OUT
#                                  (./gpu-bench-out where OUT is unset).
#
# Parts, in order (correctness before speed):
#   devices   vkrun devices --json.
#   ops       the op tests (matmul at every size and type, attention split-K
#             and the rest) on the GPU, against the CPU references.
#   q4_0      vkrun bench, GPU layout, on the SHAPE Q4_0 synthetic model at
#             DEPTHS: pp512 and tg128, with structure counts and a profile.
#   q4_k_m    the same on the Q4_K_M mix.
#   streams   batched decode: 1 and 8 concurrent streams on the Q4_0 model.
#   intdot    the Q4_0 model with --int-dot off, on and all (pp512, tg64, depth 0).
#   coopmat   the Q4_0 model's prefill with --coopmat off, khr and nv (pp512,
#             depth 0; an extension the device lacks fails alone), after the
#             ops part has checked the cooperative-matrix kernels against the
#             CPU reference (TestMatMulCoopMat/khr and /nv, TestAttentionCoopMat).
#   gobench   go test -bench for MatMul and Attention.
# The summary (summary.txt) puts tg tok/s beside the roofline, the memory
# bandwidth BW_GBS (default 4800, an H200's HBM3e) over the weight bytes.
#
# GPU_BENCH_SHAPE (default mistral-7b), GPU_BENCH_DEPTHS (default
# 0,4096,32768), GPU_BENCH_PARTS (default all, e.g. "ops q4_0") and
# GPU_BENCH_SCALE (a divisor of every time cap, default 1) make a rehearsal on
# lavapipe possible: GPU_BENCH_SHAPE=tiny GPU_BENCH_DEPTHS=0,64 scripts/gpu-bench.sh run
# (with GPU_BENCH_COOPMAT=emulate, since bookworm's lavapipe has no
# cooperative matrices).
set -uo pipefail

cd "$(dirname "$0")/.."
mode=${1:-}
out=${OUT:-$PWD/gpu-bench-out}
shape=${GPU_BENCH_SHAPE:-mistral-7b}
depths=${GPU_BENCH_DEPTHS:-0,4096,32768}
parts=${GPU_BENCH_PARTS:-devices ops q4_0 q4_k_m streams intdot coopmat gobench}
bw=${BW_GBS:-4800}

prepare() {
	set -e
	mkdir -p bin
	GOOS=linux GOARCH=amd64 go build -o bin/vkrun ./cmd/vkrun
	GOOS=linux GOARCH=amd64 go test -c -o bin/ops.test ./engine/ops
	grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >>.git/info/exclude
	if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
		mkdir -p .gl /tmp/amd64/partial
		o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
		apt-get "${o[@]}" update >/dev/null
		(cd .gl && apt-get "${o[@]}" download libvulkan1)
	fi
	du -ch bin/vkrun bin/ops.test .gl | tail -1
	cat <<'EOF'
device command (timeout_s 600), carrying bin and .gl:
  bash scripts/gpu-bench.sh run
EOF
}

# part NAME CAP_SECONDS COMMAND...: run one part under its cap: its stdout
# to NAME.out, its stderr to stderr.log (at most 8 files come back).
part() {
	local name=$1 cap=$2
	shift 2
	case " $parts " in *" $name "*) ;; *) return 0 ;; esac
	cap=$((cap / ${GPU_BENCH_SCALE:-1}))
	echo "== $name (cap ${cap}s): $*" | tee -a "$out/summary.txt"
	echo "== $name" >>"$out/stderr.log"
	local t0=$SECONDS
	timeout --kill-after=10 "$cap" "$@" >"$out/$name.out" 2>>"$out/stderr.log"
	local rc=$?
	echo "   rc $rc in $((SECONDS - t0))s" | tee -a "$out/summary.txt"
	tail -n 25 "$out/$name.out"
}

run() {
	mkdir -p "$out"
	: >"$out/summary.txt"
	: >"$out/stderr.log"
	if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
		for f in .gl/*.deb; do dpkg -x "$f" /; done
		ldconfig
	fi
	if [ -d /usr/local/nvidia/share/vulkan/icd.d ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
		export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
	fi
	if [ ! -x bin/vkrun ] || [ ! -x bin/ops.test ]; then
		echo "bin/vkrun and bin/ops.test are missing: run scripts/gpu-bench.sh prepare here and carry bin" >&2
		exit 2
	fi
	(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv) >>"$out/summary.txt" 2>&1

	# Caps sum to 560 s, inside one 600 s device command.
	part devices 20 bin/vkrun devices --json
	# The op tests run from their package directory (testdata is relative).
	part ops 120 bash -c 'cd engine/ops && ../../bin/ops.test -test.count=1 -test.timeout=110s -test.run "TestMatMul|TestAttention|TestArgmax|TestRoPE|TestRMSNorm|TestEmbed" 2>&1 | grep -v "^=== RUN" | tail -n 60'
	local q cap
	for q in q4_0 q4_k_m; do
		cap=130
		[ "$q" = q4_k_m ] && cap=125
		part "$q" "$cap" bin/vkrun bench --synthetic "$shape:$q" --layout gpu -p 512 -n 128 -r 3 --depth "$depths" --json
	done
	part intdot 40 bash -c "for d in off on all; do bin/vkrun bench --synthetic $shape:q4_0 --layout gpu -p 512 -n 64 -r 2 --int-dot \$d --json || exit; done"
	part coopmat 45 bash -c "for c in off ${GPU_BENCH_COOPMAT:-khr nv}; do bin/vkrun bench --synthetic $shape:q4_0 --layout gpu -p 512 -n 0 -r 2 --coopmat \$c --json; done"
	part streams 40 bin/vkrun bench --synthetic "$shape:q4_0" --layout gpu -p 8 -n 64 -r 3 --streams 1,8 --json
	part gobench 40 bash -c 'cd engine/ops && ../../bin/ops.test -test.run "^$" -test.bench "MatMul|Attention" -test.benchtime 20x 2>&1'

	# tg against the roofline: weight bytes over bandwidth is the least time a
	# token can take.
	if command -v python3 >/dev/null; then
		python3 - "$out" "$bw" <<'EOF' | tee -a "$out/summary.txt"
import json, os, sys
out, bw = sys.argv[1], float(sys.argv[2])
for q in ("q4_0", "q4_k_m"):
    path = os.path.join(out, q + ".out")
    if not os.path.exists(path):
        continue
    try:
        rep = json.load(open(path))
    except ValueError as e:
        print(f"{q}: no JSON in {path}: {e}")
        continue
    wb = rep.get("weight_bytes", 0)
    roof = bw * 1e9 / wb if wb else 0
    for r in rep.get("results", []):
        line = f"{q} {r['test']} @ {r['depth']}: {r['mean_tok_s']:.1f} ± {r['stddev_tok_s']:.1f} tok/s"
        if r["test"].startswith("tg") and roof:
            line += f", {100 * r['mean_tok_s'] / roof:.0f}% of the {roof:.0f} tok/s roofline"
        for k in ("dispatches_per_token", "barriers_per_token", "attention_workgroups", "host_bytes_per_token"):
            if k in r:
                line += f", {k} {r[k]}"
        print(line)
def reports(name):
    """The JSON reports, one after another, in NAME.out (none if absent)."""
    path = os.path.join(out, name + ".out")
    if not os.path.exists(path):
        return None
    text, reps, dec, i = open(path).read(), [], json.JSONDecoder(), 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return reps
        try:
            rep, i = dec.raw_decode(text, i)
        except ValueError as e:
            print(f"{name}: bad JSON in {path}: {e}")
            return reps
        reps.append(rep)

# intdot: three reports, --int-dot off, on and all; each against off, per test.
reps = reports("intdot")
if reps is not None:
    modes = [rep.get("integer_dot") for rep in reps]
    if modes == ["off", "on", "all"]:
        off = {r["test"]: r["mean_tok_s"] for r in reps[0].get("results", [])}
        for rep in reps[1:]:
            for r in rep.get("results", []):
                if off.get(r["test"]):
                    print(f"intdot {rep['integer_dot']} {r['test']}: {r['mean_tok_s']:.1f} tok/s against {off[r['test']]:.1f} off, {r['mean_tok_s'] / off[r['test']]:.2f}×, dispatches_per_token {r.get('dispatches_per_token', '-')}")
    else:
        print(f"intdot: want --int-dot off, on and all reports, got {modes}")
# coopmat: --coopmat off, then each extension, pp512 each; each against
# off, and the matrices' FLOP rate, 2 per weight per token with Q4_0's 4.5
# bits a weight (the embedding and output matrices make it approximate).
reps = reports("coopmat")
if reps is not None:
    modes = [rep.get("coopmat") for rep in reps]
    if len(modes) >= 2 and modes[0] == "off":
        off = {r["test"]: r["mean_tok_s"] for r in reps[0].get("results", [])}
        for rep in reps[1:]:
            weights = rep.get("weight_bytes", 0) * 8 / 4.5
            for r in rep.get("results", []):
                if off.get(r["test"]):
                    print(f"coopmat {rep.get('coopmat')} {r['test']}: {r['mean_tok_s']:.1f} tok/s against {off[r['test']]:.1f} off, {r['mean_tok_s'] / off[r['test']]:.2f}×, about {2 * weights * r['mean_tok_s'] / 1e12:.1f} TFLOP/s against {2 * weights * off[r['test']] / 1e12:.1f}")
    else:
        print(f"coopmat: want --coopmat off and then cooperative-matrix reports, got {modes}")
EOF
	fi
}

case "$mode" in
prepare) prepare ;;
run) run ;;
*)
	echo "usage: scripts/gpu-bench.sh prepare|run" >&2
	exit 2
	;;
esac
