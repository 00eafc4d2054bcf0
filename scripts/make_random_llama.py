#!/usr/bin/env python3
"""A ~1B-parameter Llama directory with random bf16 weights, for measuring kiln's load memory.

    /work/.venv-baselines/bin/python scripts/make_random_llama.py /tmp/llama-1b
    /usr/bin/time -v target/debug/kiln hf-info --model /tmp/llama-1b     # "Maximum resident set size"
    rm -r /tmp/llama-1b

Shape: Llama-3.2-1B's blocks (d 2048, 16 layers, 32 heads / 8 kv, d_ff 8192, llama3 RoPE) with a
32000 vocabulary and tied embeddings: 1.04e9 parameters, 2.1 GB of bf16 in two shards + index.
Written one tensor at a time so the generator itself stays small.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

D, L, H, KV, F, V = 2048, 16, 32, 8, 8192, 32000


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/llama-1b"
    os.makedirs(out, exist_ok=True)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": D,
           "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
           "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
           "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192},
           "tie_word_embeddings": True, "torch_dtype": "bfloat16", "hidden_act": "silu"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    g = torch.Generator().manual_seed(0)
    rnd = lambda *s: (0.02 * torch.randn(*s, generator=g)).to(torch.bfloat16)
    shapes = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
    for i in range(L):
        p = f"model.layers.{i}"
        shapes.update({f"{p}.input_layernorm.weight": (D,), f"{p}.post_attention_layernorm.weight": (D,),
                       f"{p}.self_attn.q_proj.weight": (D, D), f"{p}.self_attn.k_proj.weight": (KV * D // H, D),
                       f"{p}.self_attn.v_proj.weight": (KV * D // H, D), f"{p}.self_attn.o_proj.weight": (D, D),
                       f"{p}.mlp.gate_proj.weight": (F, D), f"{p}.mlp.up_proj.weight": (F, D),
                       f"{p}.mlp.down_proj.weight": (D, F)})
    names = list(shapes)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for k, part in enumerate(halves):
        file = f"model-{k + 1:05d}-of-00002.safetensors"
        save_file({n: rnd(*shapes[n]) for n in part}, os.path.join(out, file), metadata={"format": "pt"})
        weight_map.update({n: file for n in part})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)
    n = sum(torch.Size(s).numel() for s in shapes.values())
    print(f"{out}: {n / 1e9:.3f}e9 parameters, {2 * n / 1e9:.2f} GB bf16")


if __name__ == "__main__":
    main()
