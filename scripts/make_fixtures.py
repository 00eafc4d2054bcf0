#!/usr/bin/env python3
"""Golden fixtures from an independent implementation (PyTorch + HF transformers).

Builds a tiny GPT-2-style and a tiny Llama-style model with fixed weights, runs them on fixed
token ids, and writes for each: every parameter (HF names, HF layouts), the logits, the mean
cross-entropy against fixed targets (some positions ignored), every parameter's gradient, and the
losses of 5 AdamW steps (loss i is measured before update i). kiln's tests/golden.rs loads the same
weights and must reproduce all of it.

Run by a developer in the venv of ../shared/baselines/setup_env.sh (never in CI):
    ../.venv-baselines/bin/python scripts/make_fixtures.py
Output: tests/fixtures/golden_{gpt2,llama}.safetensors and .json (committed, < 1 MB in total).
"""
import json
import os

import torch
import transformers
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
IGNORE = 2**32 - 1  # kiln's ignore index for cross-entropy targets (u32::MAX)
V, T, B = 37, 12, 2
LR, WD, STEPS = 1e-2, 0.01, 5


def build(arch):
    common = dict(vocab_size=V)
    if arch == "gpt2":
        cfg = transformers.GPT2Config(n_positions=16, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0,
                                      embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
                                      activation_function="gelu_new", bos_token_id=0, eos_token_id=0, **common)
        model = transformers.GPT2LMHeadModel(cfg)
        kiln = dict(arch="gpt2", vocab_size=V, d_model=32, n_layers=2, n_heads=4, max_seq_len=16,
                    norm_eps=1e-5, tie_embeddings=True)
    else:
        cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2,
                                       max_position_embeddings=16, rms_norm_eps=1e-5,
                                       tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                                       **common)
        cfg.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
        model = transformers.LlamaForCausalLM(cfg)
        kiln = dict(arch="llama", vocab_size=V, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64,
                    max_seq_len=16, rope_theta=10000.0, norm_eps=1e-5, tie_embeddings=False)
    model.config._attn_implementation = "eager"
    # Norm weights away from the identity so their gradients and effects are exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.float().train(), kiln


def loss_of(model, ids, targets):
    logits = model(input_ids=ids).logits
    t = targets.clone()
    t[t == IGNORE] = -100
    return logits, torch.nn.functional.cross_entropy(logits.reshape(-1, V), t.reshape(-1), ignore_index=-100)


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, arch in enumerate(["gpt2", "llama"]):
        torch.manual_seed(1234 + i)
        model, kiln_cfg = build(arch)
        ids = torch.randint(0, V, (B, T))
        targets = torch.roll(ids, -1, dims=1)
        targets[:, -1] = IGNORE
        targets[0, :3] = IGNORE  # a masked prompt
        params = {n: p.detach().clone().contiguous() for n, p in model.named_parameters()}
        logits, loss = loss_of(model, ids, targets)
        loss.backward()
        grads = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
        opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD, betas=(0.9, 0.999), eps=1e-8)
        model.zero_grad()
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            _, l = loss_of(model, ids, targets)
            losses.append(l.item())
            l.backward()
            opt.step()
        out = {f"param.{n}": t for n, t in params.items()}
        out.update({f"grad.{n}": g for n, g in grads.items()})
        out["input_ids"] = ids.to(torch.int64)
        out["targets"] = targets.to(torch.int64)
        out["logits"] = logits.detach().contiguous()
        out["loss"] = loss.detach().reshape(1)
        out["step_losses"] = torch.tensor(losses, dtype=torch.float64)
        save_file(out, os.path.join(OUT, f"golden_{arch}.safetensors"))
        meta = {"kiln_config": kiln_cfg, "adamw": {"lr": LR, "weight_decay": WD, "betas": [0.9, 0.999], "eps": 1e-8},
                "steps": STEPS, "torch": torch.__version__, "transformers": transformers.__version__}
        with open(os.path.join(OUT, f"golden_{arch}.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(arch, "loss", loss.item(), "step losses", losses)


if __name__ == "__main__":
    main()
