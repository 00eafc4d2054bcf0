#!/usr/bin/env bash
# Prepares the one GPU check (KERNELS.md, "Working on the lent GPU"): builds the release kiln
# binary and the `cuda` parity-test binary HERE (the GPU machine has no Rust), stages them with
# the device-side script in .gpu/ (git-ignored), and prints the device command and its carry list.
# On the GPU machine, .gpu/run.sh runs every parity test with --include-ignored, then
# `kiln bench --device cuda`, the PyTorch baselines on the same GPU, an A/B bench of the older
# norm, softmax, LoRA thin-product and linear-attention paths, the GEMM users again on mma.sync
# (KILN_GEMM=mma), and ttt-arc with an HF model directory; under $OUT (at most 8 files come back):
# tests.log, tests-mma.log, tests-cores.log (failed tests rerun with KILN_ATTN=cores
# KILN_LINATTN=cores KILN_NORM=rc KILN_SAMPLE=rows KILN_SOFTMAX=rc KILN_LORA=mma, only if any
# failed), bench.jsonl (every row), bench.txt (the tables), misc.log
# (device, stderr, the ttt-arc log) and summary.json ({device, driver, git_sha, tests_passed,
# tests_failed, mma_tests_passed, mma_tests_failed}, also the JSONL's last line); the tables are
# printed last, then `kiln bench-report` of this run against the last committed one (PREVIOUS,
# staged as .gpu/previous.jsonl; default: the newest bench/results/gpu-*.jsonl with GEMM rows).
# The kernels' PTX for sm_90 is compiled here too (kiln compile-kernels, .gpu/kernel-cache.tar.gz),
# and run.sh points every stage at it (KILN_KERNEL_CACHE) and at one driver cache (CUDA_CACHE_PATH).
# Commit what comes back under bench/results/ (the JSONL is the only lasting record of GPU numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin kiln >&2
cargo test --release --no-run --test cuda >&2   # shows compile errors (the query below hides them)
exe=$(cargo test --release --no-run --test cuda --message-format=json 2>/dev/null | python3 -c '
import sys, json
for line in sys.stdin:
    j = json.loads(line)
    if j.get("reason") == "compiler-artifact" and j.get("executable") and j["target"]["name"] == "cuda":
        print(j["executable"])')
[[ -n $exe ]] || { echo "gpu-check: could not find the cuda test executable" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu
cp target/release/kiln .gpu/kiln
cp "$exe" .gpu/cuda-tests
strip .gpu/kiln .gpu/cuda-tests 2>/dev/null || true
cp scripts/gpu-run.sh .gpu/run.sh
cp scripts/torch_gpu_baselines.py .gpu/
cp scripts/gpu-ncu.sh .gpu/ncu.sh
cp scripts/ncu_summary.py .gpu/
# the kernels' PTX for sm_90 (H100/H200), so no stage on the GPU waits for NVRTC (~25 s a process)
tc=.cache/cuda-toolchain
[[ -d $tc/lib ]] || tc=$(scripts/cuda-toolchain.sh)
LD_LIBRARY_PATH="$PWD/$tc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" KILN_KERNEL_CACHE="$PWD/.gpu/kernel-cache" \
  target/release/kiln compile-kernels --cc 9.0 >&2
tar -C .gpu -czf .gpu/kernel-cache.tar.gz kernel-cache && rm -rf .gpu/kernel-cache
prev=${PREVIOUS:-$(grep -l '"op":"matmul"' bench/results/gpu-*.jsonl | sort | tail -1)}
[[ -n $prev ]] && cp "$prev" .gpu/previous.jsonl && echo "previous run: $prev" >&2
git rev-parse HEAD > .gpu/git_sha
git diff --quiet HEAD -- src kernels tests || echo "$(cat .gpu/git_sha)-dirty" > .gpu/git_sha
du -sh .gpu >&2
echo "staged: $(cat .gpu/git_sha)"

echo "device command:  bash .gpu/run.sh   (then, in the same call if time allows: bash .gpu/ncu.sh FAMILIES SECONDS,
                 each launch of those bench families timed by Nsight Compute, into \$OUT/misc.log)"
echo "carry:           [\".gpu\"]"
