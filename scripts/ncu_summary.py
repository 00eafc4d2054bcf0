"""Summarise Nsight Compute's raw CSV (--metrics gpu__time_duration.sum --csv --page raw): one line
per run of equal launches (same kernel and grid, in launch order), with the count and median ns.
Used by scripts/gpu-ncu.sh on the GPU machine."""
import csv
import statistics
import sys

rows = list(csv.reader(open(sys.argv[1], newline="")))
head = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
h = rows[head]
kname, grid, block, dur = (h.index(c) for c in ("Kernel Name", "Grid Size", "Block Size", "gpu__time_duration.sum"))
runs = []  # [kernel, grid, block, [ns...]]
for r in rows[head + 1:]:
    if len(r) <= dur or not r[dur].replace(",", "").replace(".", "").isdigit():
        continue  # the units row, or a short line
    key = (r[kname].split("(")[0][:48], r[grid], r[block])
    ns = float(r[dur].replace(",", ""))
    # a run: the same launch as one of the last two (a bench case alternates at most 2-3 kernels)
    for back in (1, 2, 3):
        if len(runs) >= back and tuple(runs[-back][:3]) == key and abs(statistics.median(runs[-back][3]) - ns) < 0.3 * ns:
            runs[-back][3].append(ns)
            break
    else:
        runs.append([*key, [ns]])
for k, g, b, v in runs:
    print(f"{k:<48} {g:<16} {b:<14} x{len(v):<4} {statistics.median(v):>12.0f}")
