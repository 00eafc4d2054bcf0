#!/usr/bin/env python3
"""Side-by-side table of kiln's criterion medians and the PyTorch CPU baselines from the same sitting.

Reads target/criterion/**/new/estimates.json (kiln) and the JSON written by
../shared/baselines/torch_cpu_baselines.py (PyTorch), prints a Markdown table with ratios
(kiln time / torch time: below 1.0 means kiln is faster) and appends one JSON line per workload to
the given JSONL file. Standard library only.
"""
import datetime
import json
import os
import platform
import subprocess
import sys

# kiln criterion id -> (workload, path into the torch JSON)
PAIRS = [
    ("train/a_gpt2_step", "a GPT-2 training step", ("a",)),
    ("lora/b1_forward", "b1 LoRA forward", ("b", "forward_only")),
    ("lora/b2_fwd_bwd_grads_A_B", "b2 LoRA fwd+bwd (dA, dB)", ("b", "fwd_bwd_grads_A_B")),
    ("lora/b3_fwd_bwd_grads_A_B_x", "b3 LoRA fwd+bwd (dA, dB, dx)", ("b", "fwd_bwd_grads_A_B_x")),
    ("linear_attention_fwd_b1_h8_t1024_d64_f32/chunked_c64", "c linear attention fwd (chunked C=64)", ("c", "chunked_C64")),
    ("sample_b256_v32000_f32/top_p_0.9", "d top-p 0.9 sampling [256, 32000]", ("d", "sort_based_top_p_0.9")),
    ("matmul/1024x1024x1024_f32", "matmul 1024^3 f32", None),
]


def criterion_median(root, bench_id):
    path = os.path.join(root, *bench_id.split("/"), "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1e9  # ns -> s


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: bench_compare.py TORCH_JSON CRITERION_DIR OUT_JSONL")
    torch_json, crit_dir, out_jsonl = sys.argv[1:]
    with open(torch_json) as f:
        torch = json.load(f)
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = torch.get("versions", {}).get("cpu", platform.processor())
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    print(f"| workload | kiln median (ms) | PyTorch median (ms) | kiln / torch |")
    print(f"|---|---|---|---|")
    rows = []
    for bench_id, name, tkey in PAIRS:
        k = criterion_median(crit_dir, bench_id)
        if k is None:
            continue
        t = None
        if tkey:
            node = torch
            for key in tkey:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            t = node.get("median_s") if isinstance(node, dict) else None
        ratio = k / t if t else None
        print(f"| {name} | {k * 1e3:.2f} | {t * 1e3:.2f} | {ratio:.2f}x |" if t else f"| {name} | {k * 1e3:.2f} | - | - |")
        rows.append({"workload": name, "bench_id": bench_id, "kiln_median_s": k, "torch_median_s": t,
                     "ratio": ratio, "device": f"cpu: {cpu}, {os.cpu_count()} cores", "threads": 2,
                     "torch": torch.get("versions", {}).get("torch"), "git_sha": sha, "time": stamp})
    os.makedirs(os.path.dirname(out_jsonl) or ".", exist_ok=True)
    with open(out_jsonl, "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"\n{len(rows)} rows appended to {out_jsonl}")


if __name__ == "__main__":
    main()
