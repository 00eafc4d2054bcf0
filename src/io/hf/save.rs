//! Saving a kiln Llama-style model as an HF model directory that transformers loads:
//! config.json (5.x form, see config.rs), model.safetensors (F32, HF names, Linear weights
//! transposed back to (out, in); LoRA factors left out: they go to a PEFT adapter, see peft.rs),
//! generation_config.json, and the tokenizer files copied from a source directory when given.
//! The directory is committed atomically (temp dir, fsync, rename), so a crash leaves either the
//! old directory or the complete new one.

use super::config::{config_json, HfInfo};
use crate::io::checkpoint::{commit_dir, safetensors_bytes};
use crate::model::{Arch, Transformer};
use crate::{no_grad, Error, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Tokenizer files copied along when a source directory is given.
pub const TOKENIZER_FILES: [&str; 3] = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

/// The safetensors bytes of the model's base weights in HF layout.
pub fn hf_weights_bytes(model: &Transformer) -> Result<Vec<u8>> {
    let _ng = no_grad();
    let mut tensors = Vec::new();
    for (name, p) in model.named_params() {
        if name.contains(".lora_") {
            continue;
        }
        let t = if super::hf_transposed(Arch::Llama, &name) { p.transpose(0, 1)? } else { p.clone() };
        tensors.push((name, t.to_dtype(crate::DType::F32)?));
    }
    safetensors_bytes(&tensors, &BTreeMap::from([("format".to_string(), "pt".to_string())]))
}

/// Write `model` to `dir` as an HF model directory. `tokenizer_from`: a directory whose
/// tokenizer files (TOKENIZER_FILES, those present) are copied.
pub fn save_model(model: &Transformer, info: &HfInfo, dir: &Path, tokenizer_from: Option<&Path>) -> Result<()> {
    let config = config_json(&model.cfg, info)?;
    let eos = config["eos_token_id"].clone();
    let generation = json!({"bos_token_id": info.bos_token_id, "eos_token_id": eos, "do_sample": false});
    let pretty = |v: &serde_json::Value| serde_json::to_vec_pretty(v).map_err(|e| Error::Msg(format!("HF export: {e}")));
    let mut files: Vec<(&str, Vec<u8>)> = vec![("config.json", pretty(&config)?), ("generation_config.json", pretty(&generation)?), ("model.safetensors", hf_weights_bytes(model)?)];
    if let Some(src) = tokenizer_from {
        for name in TOKENIZER_FILES {
            let p = src.join(name);
            if p.is_file() {
                let bytes = std::fs::read(&p).map_err(|e| Error::File { path: p.display().to_string(), detail: format!("cannot read: {e}") })?;
                files.push((name, bytes));
            }
        }
    }
    commit_dir(dir, &files)
}
