#!/usr/bin/env python3
"""Write two tiny SentencePiece-style tokenizer fixtures (standard library only, nothing
downloaded) for the ttt-arc text codec tests (tests/ttt_arc_hf.rs):

  tests/fixtures/sp_llama2/     Llama-2's layout: normalizer Prepend("▁") + Replace(" " -> "▁"),
                                no pre-tokenizer, BPE with byte fallback, decoder Replace /
                                ByteFallback / Fuse / Strip(one leading space)
  tests/fixtures/sp_metaspace/  the newer layout (transformers' non-legacy Llama conversion): a
                                Metaspace pre-tokenizer (prepend_scheme "first": a text encoded
                                on its own gets a leading "▁"), decoder ByteFallback + Metaspace

Both: <unk> 0, <s> 1, </s> 2, the 256 byte tokens <0x00>..<0xFF> (newline is <0x0A>), "▁",
the digits as single pieces (SentencePiece's split_digits), and merges that build "input",
"output", "▁input" and "▁output". So encoding "12\\n" on its own gives "▁" "1" "2" "<0x0A>"
while in running text after a newline it is "1" "2" "<0x0A>": the leading-space case.
Run from the repository root: python3 scripts/make_sp_tokenizers.py
"""
import json
import os

SPECIAL = ["<unk>", "<s>", "</s>"]
LETTERS = ["i", "n", "p", "u", "t", "o", ":"]
MERGES = [("i", "n"), ("p", "u"), ("pu", "t"), ("in", "put"), ("o", "u"), ("ou", "t"), ("out", "put"), ("▁", "input"), ("▁", "output")]


def vocab():
    pieces = SPECIAL + [f"<0x{b:02X}>" for b in range(256)] + ["▁"] + [str(d) for d in range(10)] + LETTERS
    pieces += [a + b for a, b in MERGES]
    return {p: i for i, p in enumerate(pieces)}


def added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}


def tokenizer(metaspace):
    model = {
        "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
        "fuse_unk": True, "byte_fallback": True, "ignore_merges": False, "vocab": vocab(), "merges": [f"{a} {b}" for a, b in MERGES],
    }
    post = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
    }
    if metaspace:
        meta = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
        normalizer, pre, decoder = None, meta, {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, dict(meta)]}
    else:
        normalizer = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        pre = None
        decoder = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [added(i, s) for i, s in enumerate(SPECIAL)],
        "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": post, "decoder": decoder, "model": model,
    }


def main():
    for name, metaspace in [("sp_llama2", False), ("sp_metaspace", True)]:
        d = os.path.join("tests", "fixtures", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer(metaspace), f, ensure_ascii=False, indent=1)
            f.write("\n")
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}, f, indent=1)
            f.write("\n")
        print(f"wrote {d}")


if __name__ == "__main__":
    main()
