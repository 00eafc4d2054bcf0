#!/usr/bin/env bash
# Runs ON the GPU machine after .gpu/run.sh (staged by scripts/gpu-check.sh as .gpu/ncu.sh): every
# kernel of `kiln bench --only FAMILIES` under Nsight Compute, duration only (one pass, clocks left
# alone), so a row of the bench splits into its launches. Appends the per-launch summary (kernel,
# grid, block, count, median ns; runs of equal launches merged, in launch order) to $OUT/misc.log.
# Usage: bash .gpu/ncu.sh FAMILIES [seconds]   e.g. bash .gpu/ncu.sh sampling,embedding 100
set -uo pipefail
OUT=${OUT:-/tmp/kiln-gpu}
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[[ -n $ncu ]] || { echo "gpu-ncu: no ncu on this machine" | tee -a "$OUT/misc.log"; exit 1; }
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia, os; [print(os.path.join(p, "cu13/lib")) for p in nvidia.__path__]' 2>/dev/null); do
  [[ -d $d ]] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
done
timeout "${2:-100}" "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --page raw \
  .gpu/kiln bench --device cuda --repeats 2 --only "$1" --jsonl /tmp/kiln-ncu-bench.jsonl >/tmp/kiln-ncu.csv 2>/tmp/kiln-ncu.err
echo "ncu exit code: $?"
{ echo "== ncu: $1 (kernel, grid, block, launches, median ns) =="; python3 .gpu/ncu_summary.py /tmp/kiln-ncu.csv; } >>"$OUT/misc.log" 2>&1
tail -40 "$OUT/misc.log"
