#!/usr/bin/env bash
# The whole test suite: what CI runs (.ci/run calls exactly this) and what a developer runs.
# 1. the line budget: no file in src/ or kernels/ over 600 lines (aim under 400);
# 2. cargo test on every target (unit, integration, benches), no GPU needed;
#    --all-targets also builds the criterion benches and runs each once in test mode (a smoke
#    run that checks their correctness guards; speed is never asserted). First the CUDA
#    toolchain wheels (NVRTC, headers, ptxas) are installed into .cache/ so the kernels_compile
#    test compiles every kernel for every target arch and prints the regs/spills table; the
#    parity tests in tests/cuda/ are ignored here (they need a GPU: scripts/gpu-check.sh), and
#    run on the emulated device in step 3.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== line budget (src/, kernels/: max 600 lines per file)"
over=0
while IFS= read -r f; do
  n=$(wc -l < "$f")
  if [ "$n" -gt 600 ]; then
    echo "  $f: $n lines (limit 600)"
    over=1
  fi
done < <(find src kernels -type f \( -name '*.rs' -o -name '*.cu' -o -name '*.cuh' -o -name '*.h' \) 2>/dev/null | sort)
if [ "$over" -ne 0 ]; then
  echo "line budget exceeded" >&2
  exit 1
fi
echo "  ok"

echo "== CUDA toolchain (NVRTC + ptxas from PyPI wheels, for the kernel compile check)"
toolchain=$(scripts/cuda-toolchain.sh)
export LD_LIBRARY_PATH="$PWD/$toolchain/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "  $toolchain"

echo "== cargo test ($(nproc) cores; disk free here: $(df -h . | awk 'NR == 2 {print $4}'))"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --no-fail-fast: a test binary that crashes (a signal, not a failed assert) must not hide the
# binaries after it; such crashes are counted below.
cargo test --locked --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?
# 3. the parity tests of tests/cuda on the emulated CUDA device: every kernel compiled as C++ by
#    build.rs (feature `emu`) and run on the CPU against its CPU twin (kernels/README.md).
echo "== emulated CUDA device: tests/cuda parity suite, kernels on the CPU (KILN_CUDA_EMU=1)"
start=$SECONDS
#    Skipped there: the cuBLAS comparison (no cuBLAS on the emulated device), and the 1e6-draw
#    sampler frequency test and random-transformers' tiny run on the device (minutes each when
#    emulated); all three run on the GPU (scripts/gpu-check.sh).
KILN_CUDA_EMU=1 cargo test --locked --test cuda -- --include-ignored \
  --skip parity_matmul_bf16_vs_cublas_512 --skip parity_sampling_empirical_frequencies \
  --skip parity_method_random_transformers 2>&1 | tee -a "$log" || status=$?
echo "  emulated parity suite: $((SECONDS - start)) s"
#    The kernels kept behind switches for the GPU's A/B bench (scripts/gpu-run.sh) stay tested:
#    norms and softmax rows again on the routing measured before (warp / unstaged row kernels),
#    and LoRA's fused GEMMs on the four opt-in wgmma variants (matmul_sm90's tests run all five).
for mode in "warp wgmma-n256" "rc wgmma-n256-l3"; do
  set -- $mode
  KILN_CUDA_EMU=1 KILN_NORM=$1 KILN_SOFTMAX=rc KILN_GEMM=$2 cargo test --locked --test cuda -- --include-ignored \
    parity_norm parity_softmax parity_lora 2>&1 | tee -a "$log" || status=$?
done
for gemm in wgmma-tma wgmma-tma-c2; do
  KILN_CUDA_EMU=1 KILN_GEMM=$gemm cargo test --locked --test cuda -- --include-ignored parity_lora 2>&1 | tee -a "$log" || status=$?
done
#    and linear attention's segments on the opt-in wgmma walks (kernels/linear_attention_wg.cu):
#    every test through the one-launch form (its own test, run above, holds it bitwise to the
#    three-launch form)
KILN_CUDA_EMU=1 KILN_LINATTN=wgmma-fused cargo test --locked --test cuda -- --include-ignored parity_linear_attention \
  --skip parity_linear_attention_wgmma_fused 2>&1 | tee -a "$log" || status=$?
# 4. the documentation: doc tests (--all-targets leaves them out) and rustdoc with every warning
#    an error, so a shape comment such as x[i] cannot turn into a broken intra-doc link.
echo "== docs: doc tests and rustdoc (warnings are errors)"
cargo test --locked --doc 2>&1 | tee -a "$log" || status=$?
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --lib 2>&1 | tail -n 20 || status=1
# 5. lints: clippy on every target, with and without the CUDA backend, every warning an error.
#    The few lints kiln overrides carry their reason where they are allowed (src/lib.rs: the
#    NaN-rejecting `!(x > 0.0)`).
echo "== clippy (warnings are errors)"
if cargo clippy --version >/dev/null 2>&1; then
  for features in "" "--features cuda"; do
    cargo clippy --locked --all-targets $features -- -D warnings 2>&1 | tail -n 30 || status=1
  done
else
  echo "  clippy is not installed with this toolchain: lints skipped"
fi
# the kernel table (printed by kernels_compile with --nocapture so it shows in the CI log)
cargo test --locked --test kernels_compile -- --nocapture 2>&1 | grep -E '^(family|[a-z_]+ +[a-z_0-9]+ +sm_)|kernels_compile:' || status=1

# One closing line for the whole suite, summed over every test binary.
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
# Test binaries that failed or crashed (a crash leaves no "N failed" line): cargo prints
# "error: test failed, to rerun pass `--test NAME`" for each, in both steps.
bad=$(grep -c 'error: test failed, to rerun pass' "$log" || true)
echo
echo "suite: $passed passed, $failed failed; test binaries that failed or crashed: $bad"
grep -Eo 'error: test failed, to rerun pass .*' "$log" | sed 's/^/  /' || true
exit "$status"
