#!/usr/bin/env bash
# kiln's CPU benches (workloads a, b1-b3, c, d) next to the PyTorch baselines, in one sitting, on 2 threads each.
# Needs the baseline venv (../shared/baselines/setup_env.sh; ~5.6 GB, developer machines only,
# never CI). Usage: scripts/bench-vs-torch.sh [VENV]   (default: ../.venv-baselines)
# Writes a Markdown table to stdout and appends JSONL to bench/results/cpu.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-../.venv-baselines}
base=../shared/baselines
[ -x "$venv/bin/python" ] || { echo "no baseline venv at $venv: run $base/setup_env.sh $venv" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== PyTorch baselines a, b, c, d (2 threads)" >&2
"$venv/bin/python" "$base/torch_cpu_baselines.py" --only a,b,c,d --json "$tmp/torch.json" > /dev/null
echo "== kiln criterion benches (RAYON_NUM_THREADS=2)" >&2
RAYON_NUM_THREADS=2 cargo bench --locked --bench train_step --bench lora --bench linear_attention --bench sample >&2
python3 scripts/bench_compare.py "$tmp/torch.json" target/criterion bench/results/cpu.jsonl
