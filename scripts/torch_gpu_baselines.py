"""PyTorch on the same GPU, same shapes as `kiln bench --device cuda` (issue signature-kernels):
LoRA as three matmuls, chunked causal linear attention written in torch (a loop over chunks, f32;
and, last, all chunks at once in f32 and bf16), sort-based top-p sampling, and a bf16 GEMM. One
JSON row per measurement on stdout (the bench row schema), each printed as soon as it is timed.
Usage: python3 torch_gpu_baselines.py "<device name>" """
import json
import sys

import torch

dev = sys.argv[1] if len(sys.argv) > 1 else torch.cuda.get_device_name()
torch.manual_seed(0)


def median_ms(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def row(op, variant, shape, ms, gbps=None, tflops=None):
    print(json.dumps({"device": dev, "op": op, "variant": variant, "shape": shape, "median_ms": ms,
                      "gbps": gbps, "tflops": tflops, "baseline": None, "ratio": None}), flush=True)


# GEMM, bf16, 4096^3
n = 4096
a, b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16), torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
ms = median_ms(lambda: a @ b)
row("matmul", "torch_bf16", "4096^3", ms, tflops=2 * n ** 3 / ms / 1e9)

# LoRA forward: y = x W + s (x A) B, three matmuls, N=4096, K=M=4096, R=16, bf16; and decode N=16
for N in (4096, 16):
    K = M = 4096
    R, s = 16, 2.0
    x = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
    W = torch.randn(K, M, device="cuda", dtype=torch.bfloat16) / 64
    A = torch.randn(K, R, device="cuda", dtype=torch.bfloat16) / 64
    B = torch.randn(R, M, device="cuda", dtype=torch.bfloat16) / 4
    ms = median_ms(lambda: x @ W + s * ((x @ A) @ B))
    row("lora_fwd", "torch_3matmul_bf16", f"N={N} K={K} M={M} R={R}", ms, tflops=2 * N * K * M / ms / 1e9)
    ms = median_ms(lambda: x @ W)
    row("lora_fwd", "torch_xW_only_bf16", f"N={N} K={K} M={M}", ms, tflops=2 * N * K * M / ms / 1e9)


# Chunked causal linear attention in torch, f32, C = 64
def chunked_linear_attention(q, k, v, C=64):
    bh, T, D = q.shape
    S = torch.zeros(bh, D, v.shape[-1], device=q.device, dtype=torch.float32)
    out = torch.empty_like(v)
    mask = torch.tril(torch.ones(C, C, device=q.device, dtype=torch.bool))
    for c0 in range(0, T, C):
        qi, ki, vi = q[:, c0:c0 + C], k[:, c0:c0 + C], v[:, c0:c0 + C]
        L = qi.shape[1]
        att = (qi @ ki.transpose(1, 2)).masked_fill(~mask[:L, :L], 0.0)
        out[:, c0:c0 + C] = qi @ S + att @ vi
        S = S + ki.transpose(1, 2) @ vi
    return out, S


BH, T, D = 64, 4096, 128
q, k, v = (torch.randn(BH, T, D, device="cuda") / D ** 0.5 for _ in range(3))
ms = median_ms(lambda: chunked_linear_attention(q, k, v), reps=10)
row("linear_attention_fwd", "torch_chunked_f32", f"BH={BH} T={T} D={D}", ms, gbps=4 * BH * T * D * 4 / ms / 1e6)


# Sort-based top-p (+ temperature, top-k) sampling, f32 logits
def sort_sample(logits, temperature=0.8, top_k=50, top_p=0.9):
    x = logits / temperature
    vals, idx = torch.sort(x, dim=-1, descending=True)
    vals[:, top_k:] = float("-inf")
    probs = torch.softmax(vals, dim=-1)
    cum = probs.cumsum(-1)
    probs = probs.masked_fill(cum - probs > top_p, 0.0)
    pick = torch.multinomial(probs, 1)
    return idx.gather(-1, pick)


for Bn in (64, 256):
    for V in (32000, 128256):
        logits = torch.randn(Bn, V, device="cuda") * 3
        ms = median_ms(lambda: sort_sample(logits))
        row("sampling", "torch_sort_topp", f"B={Bn} V={V}", ms, gbps=Bn * V * 4 / ms / 1e6)


# Chunked causal linear attention with no Python loop: every chunk's products batched, the states
# an exclusive prefix sum over chunks in f32 (what a torch user would write for speed). Last, and
# guarded, so an error here loses none of the rows above.
def chunked_parallel(q, k, v, C=64):
    bh, T, D = q.shape
    n = T // C
    qc, kc, vc = (x.reshape(bh, n, C, x.shape[-1]) for x in (q, k, v))
    mask = torch.tril(torch.ones(C, C, device=q.device, dtype=torch.bool))
    att = (qc @ kc.transpose(-1, -2)).masked_fill(~mask, 0.0)
    kv = (kc.transpose(-1, -2) @ vc).float()
    S = (kv.cumsum(1) - kv).to(q.dtype)
    return (att @ vc + qc @ S).reshape(bh, T, -1)


try:
    ref, _ = chunked_linear_attention(q[:2, :256], k[:2, :256], v[:2, :256])
    got = chunked_parallel(q[:2, :256], k[:2, :256], v[:2, :256])
    assert torch.allclose(ref, got, rtol=1e-3, atol=1e-3), f"max difference {(ref - got).abs().max().item()}"
    for dt, name in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        qd, kd, vd = (x.to(dt) for x in (q, k, v))
        ms = median_ms(lambda: chunked_parallel(qd, kd, vd), reps=10)
        row("linear_attention_fwd", f"torch_chunked_parallel_{name}", f"BH={BH} T={T} D={D}", ms,
            gbps=4 * BH * T * D * qd.element_size() / ms / 1e6)
except Exception as e:  # noqa: BLE001 (report and keep the rows above)
    print(f"torch_gpu_baselines: chunked_parallel failed: {e}", file=sys.stderr)

