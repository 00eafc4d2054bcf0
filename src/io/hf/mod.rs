//! The HF ecosystem's files, both ways (DESIGN.md decision 8):
//! - config.rs: config.json (llama / mistral / qwen2; 4.x and 5.x RoPE forms, llama3 scaling);
//! - load.rs: model.safetensors or shards + index, memory-mapped, validated, converted once;
//! - save.rs: a kiln model as an HF directory transformers loads (atomic);
//! - peft.rs: PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors) both ways;
//! - tokenizer.rs: tokenizer.json through the `tokenizers` crate, with BOS/EOS from the configs;
//! - vocab.rs: a checkpoint cut to a method's own words (the methods' `--model DIR`).
//!
//! kiln's parameter names ARE the HF names (model/transformer.rs builds them that way); only
//! layouts differ: HF `nn.Linear` weights are (out, in) and kiln's are (in, out), so Llama-family
//! projection weights and `lm_head.weight` are transposed on the way in and out. GPT-2's
//! `Conv1D` weights are already (in, out) and map as they are (golden fixtures only).

pub mod config;
pub mod load;
pub mod peft;
pub mod save;
pub mod tokenizer;
pub mod vocab;

pub use config::{parse_config, read_config, HfInfo};
pub use load::{load_model, load_weights_into};
pub use peft::{load_adapter, save_adapter, PeftConfig};
pub use save::save_model;
pub use tokenizer::HfTokenizer;
pub use vocab::{load_with_vocab, VocabCut};

use crate::model::{Arch, Transformer};
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};
use std::collections::BTreeMap;

/// Is `name` stored (out, in) by HF, i.e. transposed relative to kiln?
pub fn hf_transposed(arch: Arch, name: &str) -> bool {
    let linear = name.ends_with("_proj.weight") || name == "lm_head.weight";
    arch == Arch::Llama && linear || arch == Arch::Gpt2 && name == "lm_head.weight"
}

/// Copy HF-named tensors into the model's parameters. Every parameter must be present with the
/// right shape; extra tensors are an error unless listed in `ignore` (e.g. a tied lm_head).
pub fn load_params(model: &Transformer, tensors: &BTreeMap<String, Tensor>, origin: &str) -> Result<()> {
    let _ng = no_grad();
    let params = model.named_params();
    let missing: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).filter(|n| !tensors.contains_key(*n)).collect();
    let tied_head = model.lm_head.is_none();
    let unexpected: Vec<&str> = tensors
        .keys()
        .map(String::as_str)
        .filter(|k| !(params.iter().any(|(n, _)| n == k) || tied_head && *k == "lm_head.weight"))
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(Error::File { path: origin.into(), detail: format!("parameter names differ: missing {missing:?}, unexpected {unexpected:?}") });
    }
    for (name, p) in &params {
        let src = &tensors[name];
        let src = if hf_transposed(model.cfg.arch, name) { src.transpose(0, 1)? } else { src.clone() };
        let src = src.to_dtype(p.dtype())?;
        if src.shape() != p.shape() {
            return Err(Error::File { path: origin.into(), detail: format!("tensor `{name}`: shape {} (kiln layout), the model expects {}", src.shape(), p.shape()) });
        }
        p.assign(&src)?;
    }
    Ok(())
}
