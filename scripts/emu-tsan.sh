#!/usr/bin/env bash
# Emulated kernels under ThreadSanitizer: rebuilds kernels/*.cu for the emulated CUDA device with
# -fsanitize=thread (build.rs reads KILN_EMU_CXXFLAGS; only the kiln crate is rebuilt, and again by
# the next normal build), then runs the emulator's self-checks and the parity tests of tests/cuda on the
# emulated device. Each fiber (CUDA thread) is a thread to TSan and barriers are annotated
# (kernels/emu_rt.cpp), so a shared-memory race between the threads of a block is reported even
# when the fiber order happened to hide it. Usage: scripts/emu-tsan.sh [test-name filter]
# (default: every parity test; e.g. `scripts/emu-tsan.sh parity_norm`).
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-parity_}"
export KILN_EMU_CXXFLAGS="-fsanitize=thread"
export KILN_EMU_OPT=1
export KILN_CUDA_EMU=1
# Halt on the first report. Rust code is not instrumented (its synchronisation is invisible to
# TSan), so accesses made inside intercepted libc calls (memcpy, free) are not checked: only the
# kernels' own loads and stores are.
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 ignore_interceptors_accesses=1}"
# TSan's fixed shadow layout clashes with the wide mmap randomisation of recent kernels: run the
# test binaries with address-space randomisation off.
runner="setarch $(uname -m) -R"
triple=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${triple}_RUNNER=$runner"
echo "== emulated kernels under ThreadSanitizer ($filter)"
cargo test --test emu -- --test-threads=1
cargo test --test cuda -- --include-ignored --test-threads=1 "$filter"
