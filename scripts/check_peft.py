#!/usr/bin/env python3
"""Developer check (never in CI): what kiln trains, the HF ecosystem reads.

1. `kiln train --model tests/fixtures/hf_llama --lora ... --rslora` fine-tunes a LoRA adapter for a
   few steps on the built-in corpus and saves it in PEFT's format (RUN/adapter).
2. kiln writes its logits for a prompt with that adapter (`kiln hf-info --logits-out`).
3. transformers + peft load the same base and adapter and compute the logits: max abs/rel diff.
4. `kiln hf-export` writes the trained checkpoint as an HF directory (+ adapter); transformers
   loads it and must give the same logits again.
5. Other families kiln reads: tiny random Qwen2 (q/k/v biases, tied embeddings) and Mistral
   (GQA, sliding window) directories made here by transformers; kiln's logits vs theirs.

    cargo build --bin kiln && /work/.venv-baselines/bin/python scripts/check_peft.py
(KILN=path/to/kiln overrides the binary; by default $CARGO_TARGET_DIR/debug/kiln or target/debug/kiln.)
"""
import json
import os
import subprocess
import sys
import tempfile

import peft
import torch
import transformers
from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "tests", "fixtures", "hf_llama")
KILN = os.environ.get("KILN") or os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "kiln")
PROMPT = "The kiln fires the clay slowly; café 日本語 and   spaces."


def kiln(*args):
    print("$ kiln", " ".join(args), flush=True)
    out = subprocess.run([KILN, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"kiln failed:\n{out.stdout}\n{out.stderr}")
    print(out.stdout.strip())


def hf_logits(model_dir, adapter_dir, ids):
    base = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model = peft.PeftModel.from_pretrained(base, adapter_dir) if adapter_dir else base
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


def compare(what, ours, theirs):
    diff = (ours - theirs).abs().max().item()
    rel = diff / theirs.abs().max().item()
    print(f"{what}: max abs diff {diff:.3e}, max rel diff {rel:.3e}")
    return rel


def check_family(family, tmp):
    torch.manual_seed(7)
    common = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-6)
    if family == "qwen2":
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(tie_word_embeddings=True, **common))
    else:
        model = transformers.MistralForCausalLM(transformers.MistralConfig(sliding_window=64, **common))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn_like(p))
    d = os.path.join(tmp, family)
    model.save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        with open(os.path.join(MODEL, f)) as src, open(os.path.join(d, f), "w") as dst:
            dst.write(src.read())
    out = os.path.join(tmp, f"{family}_logits.safetensors")
    kiln("hf-info", "--model", d, "--prompt", PROMPT, "--logits-out", out)
    k = load_file(out)
    return compare(f"{family}: kiln vs transformers", k["logits"], hf_logits(d, None, k["input_ids"].to(torch.int64)))


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-check-peft-")
    cfg = os.path.join(tmp, "run.json")
    with open(cfg, "w") as f:
        json.dump({"data": {"kind": "text", "path": None, "tokenizer": "hf", "seq_len": 32},
                   "train": {"steps": 30, "batch_size": 8, "lr": 1e-2, "log_every": 10, "progress": False}}, f)
    run = os.path.join(tmp, "run")
    kiln("train", "--config", cfg, "--model", MODEL, "--lora", "q,k,v,o,gate,up,down", "--lora-rank", "4",
         "--lora-alpha", "8", "--rslora", "--out", run)
    adapter = os.path.join(run, "adapter")
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        print("adapter_config:", {k: v for k, v in json.load(f).items() if k in ("r", "lora_alpha", "use_rslora", "target_modules")})
    ours = os.path.join(tmp, "kiln_logits.safetensors")
    kiln("hf-info", "--model", MODEL, "--adapter", adapter, "--prompt", PROMPT, "--logits-out", ours)
    k = load_file(ours)
    ids = k["input_ids"].to(torch.int64)
    base = hf_logits(MODEL, None, ids)
    tuned = hf_logits(MODEL, adapter, ids)
    print(f"the trained adapter moves the logits by {(tuned - base).abs().max().item():.3f} (max abs)")
    worst = compare("kiln-trained adapter, kiln vs peft", k["logits"], tuned)

    export = os.path.join(tmp, "export")
    kiln("hf-export", "--checkpoint", run, "--out", export, "--tokenizer", MODEL)
    worst = max(worst, compare("hf-export (base + adapter), kiln vs transformers + peft", k["logits"],
                               hf_logits(export, os.path.join(export, "adapter"), ids)))
    worst = max(worst, compare("hf-export base weights vs the original base", hf_logits(export, None, ids), base))
    tok = transformers.AutoTokenizer.from_pretrained(export)
    assert tok(PROMPT)["input_ids"] == ids[0].tolist(), "exported tokenizer gives other ids"
    for family in ("qwen2", "mistral"):
        worst = max(worst, check_family(family, tmp))
    print("OK" if worst <= 1e-4 else "FAIL", f"(worst rel diff {worst:.3e}, tolerance 1e-4); files in {tmp}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
