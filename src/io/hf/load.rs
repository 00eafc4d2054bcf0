//! Loading an HF model directory into a kiln `Transformer`: config.json, then the weights from
//! `model.safetensors` or the shards named by `model.safetensors.index.json`, every file
//! memory-mapped. Each weight is converted straight from the mapped bytes (F32, BF16 or F16) into
//! its F32 parameter buffer in kiln's layout, transposing HF's (out, in) Linear weights on the
//! way, so the weights are copied exactly once; the model starts as a `skeleton` whose untouched
//! zero buffers cost nothing.
//!
//! Validation, every error naming the file and the tensor: headers over the safetensors limit,
//! header lengths past the end of the file, truncated data, overlapping or gapped offsets (the
//! safetensors crate's checks, reworded); missing and unexpected names listed; a wrong shape or a
//! non-float dtype names the tensor.

use super::config::{read_config, HfInfo};
use crate::model::{Arch, Transformer};
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};
use safetensors::tensor::{Metadata, SafeTensorError};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Buffers HF checkpoints may carry that are not parameters (RoPE tables of older exports).
fn ignorable(name: &str) -> bool {
    name.ends_with("rotary_emb.inv_freq")
}

/// One memory-mapped safetensors file with its validated header.
pub struct MappedFile {
    pub path: PathBuf,
    map: memmap2::Mmap,
    header_len: usize,
    meta: Metadata,
}

/// The crate's error, in words that say what is wrong with the file.
fn describe(e: SafeTensorError) -> String {
    match e {
        SafeTensorError::HeaderTooLarge => "the header length is over the 100 MB safetensors limit (corrupt or not a safetensors file)".into(),
        SafeTensorError::HeaderTooSmall => "shorter than the 8-byte header length (truncated or empty file)".into(),
        SafeTensorError::InvalidHeaderLength => "the header length points past the end of the file (truncated file?)".into(),
        SafeTensorError::MetadataIncompleteBuffer => "the data section's length differs from what the header declares (truncated file?)".into(),
        SafeTensorError::InvalidOffset(name) => format!("tensor `{name}`: its data offsets overlap another tensor or leave a gap"),
        SafeTensorError::TensorInvalidInfo => "a tensor's byte range does not match its shape and dtype".into(),
        other => format!("not a valid safetensors file: {other}"),
    }
}

impl MappedFile {
    pub fn open(path: &Path) -> Result<MappedFile> {
        let err = |detail: String| Error::File { path: path.display().to_string(), detail };
        let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        // SAFETY: a read-only map; the one hazard of any mmap reader is another process
        // truncating the file while we read it, which is outside what a loader can defend.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| err(format!("cannot map: {e}")))?;
        let (header_len, meta) = SafeTensors::read_metadata(&map).map_err(|e| err(describe(e)))?;
        Ok(MappedFile { path: path.to_path_buf(), map, header_len, meta })
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.meta.tensors().into_keys().collect();
        names.sort();
        names
    }

    /// The tensor `name` as F32 of kiln shape `shape`; `transposed`: the file holds the 2-D
    /// transpose (HF's (out, in) for kiln's (in, out)), converted in the same pass.
    pub fn read_f32(&self, name: &str, shape: &[usize], transposed: bool) -> Result<Tensor> {
        let err = |detail: String| Error::File { path: self.path.display().to_string(), detail: format!("tensor `{name}`: {detail}") };
        let info = self.meta.info(name).ok_or_else(|| err("not in this file".into()))?;
        let file_shape: Vec<usize> = if transposed { shape.iter().rev().copied().collect() } else { shape.to_vec() };
        if info.shape != file_shape {
            return Err(err(format!("shape {:?} in the file, expected {file_shape:?}", info.shape)));
        }
        let (start, end) = info.data_offsets;
        let bytes = &self.map[8 + self.header_len + start..8 + self.header_len + end];
        let value: fn(&[u8]) -> f32 = match info.dtype {
            Dtype::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::BF16 => |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            Dtype::F16 => |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            other => return Err(err(format!("dtype {other:?}, expected a float weight (F32, BF16 or F16)"))),
        };
        let size = info.dtype.bitsize() / 8;
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if transposed {
            // file (M, K) row-major -> kiln (K, M): out[k * M + m] = in[m * K + k]
            let (k, m) = (shape[0], shape[1]);
            let mut out = vec![0f32; n];
            for (i, chunk) in bytes.chunks_exact(size).enumerate() {
                let (row, col) = (i / k, i % k);
                out[col * m + row] = value(chunk);
            }
            out
        } else {
            bytes.chunks_exact(size).map(value).collect()
        };
        // Hand the file pages back now that they are converted, so the mapped file does not sit
        // in memory next to the F32 copy (peak = the F32 model + one tensor's pages).
        // SAFETY: a read-only, file-backed mapping: MADV_DONTNEED only drops clean page-cache
        // pages from this process; a later read of the range faults them in from the file again.
        #[cfg(unix)]
        unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 8 + self.header_len + start, end - start) }.ok();
        Tensor::from_vec(data, shape.to_vec())
    }
}

/// The weight files of an HF model directory: the shards of the index, or model.safetensors.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let err = |detail: String| Error::File { path: index.display().to_string(), detail };
        let text = std::fs::read_to_string(&index).map_err(|e| err(format!("cannot read: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| err("field `weight_map` (tensor name -> file) is missing".into()))?;
        let mut files: Vec<String> = Vec::new();
        for (name, f) in map {
            let f = f.as_str().ok_or_else(|| err(format!("field `weight_map.{name}`: expected a file name")))?;
            if f.contains('/') || f.contains('\\') || f.starts_with('.') {
                return Err(err(format!("field `weight_map.{name}`: `{f}` is not a plain file name in the model directory")));
            }
            if !files.iter().any(|x| x == f) {
                files.push(f.to_string());
            }
        }
        files.sort();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(Error::File { path: dir.display().to_string(), detail: "no model.safetensors or model.safetensors.index.json here".into() })
}

/// Map every weight file and index tensor names to files; a name in two files is an error.
pub fn map_files(files: &[PathBuf]) -> Result<(Vec<MappedFile>, BTreeMap<String, usize>)> {
    let mapped = files.iter().map(|f| MappedFile::open(f)).collect::<Result<Vec<_>>>()?;
    let mut where_ = BTreeMap::new();
    for (i, m) in mapped.iter().enumerate() {
        for name in m.names() {
            if let Some(j) = where_.insert(name.clone(), i) {
                return Err(Error::File { path: m.path.display().to_string(), detail: format!("tensor `{name}` is also in {}", mapped[j].path.display()) });
            }
        }
    }
    Ok((mapped, where_))
}

/// "a, b, c" with at most 8 names, then "and N more".
pub fn list_names(names: &[&str]) -> String {
    let shown: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
    match names.len() {
        0 => "none".into(),
        n if n <= 8 => shown.join(", "),
        n => format!("{} and {} more", shown.join(", "), n - 8),
    }
}

/// Fill the model's base parameters (LoRA factors excluded) from the weight files of `dir`.
pub fn load_weights_into(model: &Transformer, dir: &Path) -> Result<()> {
    if model.cfg.arch != Arch::Llama {
        return Err(Error::Msg(format!("HF load: kiln reads Llama-family models only, this one is {:?}", model.cfg.arch)));
    }
    let files = weight_files(dir)?;
    let (mapped, where_) = map_files(&files)?;
    let origin = if files.len() == 1 { files[0].display().to_string() } else { format!("{} ({} shards)", dir.display(), files.len()) };
    let params: Vec<(String, Tensor)> = model.named_params().into_iter().filter(|(n, _)| !n.contains(".lora_")).collect();
    let missing: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).filter(|n| !where_.contains_key(*n)).collect();
    let tied = model.lm_head.is_none();
    let unexpected: Vec<&str> = where_
        .keys()
        .map(String::as_str)
        .filter(|k| !(ignorable(k) || tied && *k == "lm_head.weight" || params.iter().any(|(n, _)| n == k)))
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(Error::File {
            path: origin,
            detail: format!("tensor names differ from the model's: missing {}; unexpected {}", list_names(&missing), list_names(&unexpected)),
        });
    }
    let _ng = no_grad();
    for (name, p) in &params {
        let t = mapped[where_[name]].read_f32(name, p.dims(), super::hf_transposed(Arch::Llama, name))?;
        p.assign(&t)?;
    }
    Ok(())
}

/// Load the HF model directory `dir`: its config.json and weights.
pub fn load_model(dir: &Path) -> Result<(Transformer, HfInfo)> {
    let (cfg, info) = read_config(dir)?;
    let model = Transformer::skeleton(cfg)?;
    load_weights_into(&model, dir)?;
    Ok((model, info))
}
