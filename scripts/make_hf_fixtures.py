#!/usr/bin/env python3
"""HF-interop fixtures from the reference stack (transformers + peft + tokenizers).

Writes, for tests/hf.rs:
  tests/fixtures/hf_llama/          a tiny Llama (GQA 4/2 heads, RoPE with Llama-3 scaling, RMSNorm,
                                    SwiGLU) saved by transformers: config.json (5.x form),
                                    model.safetensors (f32), generation_config.json, and a byte-level
                                    BPE tokenizer.json (trained here, Llama-3 split regex) with
                                    tokenizer_config.json (special tokens, a chat template)
  tests/fixtures/hf_llama_adapter/  a PEFT rsLoRA adapter (all 7 projections, rank_pattern and
                                    alpha_pattern, non-zero B) saved by peft
  tests/fixtures/hf_reference.safetensors  input_ids, logits of the base model and of base+adapter
  tests/fixtures/hf_tokenizer.json  strings (unicode, whitespace runs, special tokens) and their ids
                                    with and without special tokens, and the decoded text

Run by a developer (never in CI):  /work/.venv-baselines/bin/python scripts/make_hf_fixtures.py
Everything is float32 and eager attention, so kiln must match within 1e-4 relative.
"""
import json
import os
import shutil

import peft
import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
MODEL_DIR = os.path.join(ROOT, "hf_llama")
ADAPTER_DIR = os.path.join(ROOT, "hf_llama_adapter")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]
# The Llama-3 pre-tokenizer split (it needs look-ahead, hence fancy-regex on the Rust side).
SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# A short training text for the BPE merges (written for this fixture).
CORPUS = """The kiln fires the clay slowly, and the potter waits by the door.
A model learns the next token; the tokenizer turns text into numbers and back again.
Weights are stored in safetensors files, config.json says how the layers are shaped.
Low-rank adapters change a few matrices: the base stays frozen, the adapter learns.
Numbers like 2024, 3.14159 and 1000000 are split into groups of three digits.
Café, naïve, résumé, Straße, smörgåsbord; 日本語のテキスト; Ελληνικά; emoji 🙂🔥.
    Indented lines, tabs\tand  double  spaces   and trailing spaces   
Questions? Answers! Lists: one, two, three... (parentheses) [brackets] {braces}.
"""

TOKENIZER_STRINGS = [
    "Hello world",
    "The kiln fires the clay.",
    "  leading,   runs   of spaces,\t\ttabs and a trailing space ",
    "line one\nline two\r\n\n\nafter blank lines",
    "unicode: café naïve Straße 日本語 Ελληνικά 🙂🔥 ünïcödé",
    "<|begin_of_text|>special<|eot_id|> tokens <|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "numbers 2024 3.14159 1234567 and punctuation?!... (ok) [x] {y}",
    "I'm sure they'll say it's THE best, we've DONE it'd",
    "",
    "   ",
]

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def build_tokenizer():
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 4, trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok


def main():
    torch.manual_seed(2024)
    for d in (MODEL_DIR, ADAPTER_DIR):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    tok = build_tokenizer()
    vocab = tok.get_vocab_size()
    bos, eos, eot = (tok.token_to_id(s) for s in SPECIALS[:3])

    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=False,
                                   mlp_bias=False, bos_token_id=bos, eos_token_id=[eos, eot])
    # Llama-3 RoPE scaling; head dim 16 puts the 8 frequencies in all three bands (kept, smoothed, divided).
    cfg.rope_parameters = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0, "original_max_position_embeddings": 128}
    model = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    model.config._attn_implementation = "eager"
    model = model.float().eval()
    model.generation_config = transformers.GenerationConfig(bos_token_id=bos, eos_token_id=[eos, eot], do_sample=False)
    model.save_pretrained(MODEL_DIR)
    tok.save(os.path.join(MODEL_DIR, "tokenizer.json"))
    with open(os.path.join(MODEL_DIR, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
                   "eos_token": "<|eot_id|>", "model_max_length": 256, "chat_template": CHAT_TEMPLATE}, f, indent=1)

    # Tokenizer references through transformers' own loading path.
    hf_tok = transformers.AutoTokenizer.from_pretrained(MODEL_DIR)
    cases = []
    for s in TOKENIZER_STRINGS:
        with_special = hf_tok(s, add_special_tokens=True)["input_ids"]
        plain = hf_tok(s, add_special_tokens=False)["input_ids"]
        cases.append({"text": s, "ids": with_special, "ids_no_special": plain,
                      "decoded": hf_tok.decode(with_special, skip_special_tokens=False)})
    chat = hf_tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    with open(os.path.join(ROOT, "hf_tokenizer.json"), "w") as f:
        json.dump({"vocab_size": vocab, "bos_token_id": bos, "eos_token_ids": [eos, eot], "cases": cases,
                   "chat_example": chat, "tokenizers": tokenizers.__version__,
                   "transformers": transformers.__version__}, f, indent=1, ensure_ascii=False)

    # Reference logits: two prompts of the fixture strings, same length T.
    T = 24
    rows = [hf_tok(TOKENIZER_STRINGS[i], add_special_tokens=True)["input_ids"] for i in (2, 4)]
    ids = torch.tensor([(r * 4)[:T] for r in rows], dtype=torch.int64)
    with torch.no_grad():
        logits_base = model(input_ids=ids).logits.contiguous()

    lcfg = peft.LoraConfig(r=4, lora_alpha=8.0, use_rslora=True, lora_dropout=0.0, task_type="CAUSAL_LM",
                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                           rank_pattern={"down_proj": 2}, alpha_pattern={"model.layers.1.self_attn.q_proj": 3.0})
    pm = peft.get_peft_model(model, lcfg)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.copy_(0.2 * torch.randn_like(p))
    pm.eval()
    with torch.no_grad():
        logits_adapter = pm(input_ids=ids).logits.contiguous()
    pm.save_pretrained(ADAPTER_DIR)
    os.remove(os.path.join(ADAPTER_DIR, "README.md"))  # peft's model card: not needed here
    save_file({"input_ids": ids, "logits_base": logits_base, "logits_adapter": logits_adapter},
              os.path.join(ROOT, "hf_reference.safetensors"),
              metadata={"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__})
    diff = (logits_adapter - logits_base).abs().max().item()
    print(f"vocab {vocab}, params {sum(p.numel() for p in model.parameters())}, adapter moves logits by {diff:.3f}")


if __name__ == "__main__":
    main()
