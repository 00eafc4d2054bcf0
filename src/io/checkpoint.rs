//! Writing files so that a crash never leaves a partial one behind (DESIGN.md decision 8), and
//! the checkpoint-directory mechanics built on that: strict safetensors save/load of named F32
//! tensors, `step-NNNNNN` directories committed by one rename, the latest complete one found
//! (stray `*.tmp-<pid>` directories ignored), and all but the last K pruned.
//!
//! Atomicity recipe (the one databases use): write into a temp name in the same directory,
//! fsync the file, rename it over the final name, fsync the directory so the rename itself is
//! durable. A directory of files is committed the same way: every file fsync'd inside a temp
//! directory, the temp directory fsync'd, then renamed. Readers only ever see complete states.

use crate::tensor::{DType, Shape, Tensor};
use crate::{Error, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

fn file_err(path: &Path, detail: impl Into<String>) -> Error {
    Error::File { path: path.display().to_string(), detail: detail.into() }
}

/// fsync a directory, making renames and creations inside it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).map_err(|e| file_err(dir, format!("cannot open directory to sync: {e}")))?;
    d.sync_all().map_err(|e| file_err(dir, format!("cannot sync directory: {e}")))
}

/// Create `path` with `bytes` and fsync it (no rename: for files inside a temp directory).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| file_err(path, format!("cannot create: {e}")))?;
    f.write_all(bytes).map_err(|e| file_err(path, format!("cannot write: {e}")))?;
    f.sync_all().map_err(|e| file_err(path, format!("cannot sync: {e}")))
}

/// Replace `path` with `bytes` atomically: temp file in the same directory, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().ok_or_else(|| file_err(path, "not a file path"))?.to_string_lossy();
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| file_err(path, format!("cannot rename {} into place: {e}", tmp.display()))));
    if written.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    written?;
    sync_dir(dir)
}

/// The bytes of a safetensors file holding `tensors` (F32 or U32) and string `metadata`.
/// The crate keeps metadata in a HashMap: with more than one key the header's byte order varies
/// from run to run (the content does not).
pub fn safetensors_bytes(tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (dtype, bytes): (Dtype, Vec<u8>) = match t.dtype() {
            DType::F32 => (Dtype::F32, t.to_vec_f32()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
            DType::U32 => (Dtype::U32, t.to_vec_u32()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
            other => return Err(Error::UnsupportedDType { op: "save safetensors", dtype: other, detail: "checkpoints hold F32 (and U32) tensors" }),
        };
        raw.push((name.as_str(), dtype, t.dims().to_vec(), bytes));
    }
    let views = raw
        .iter()
        .map(|(n, dt, shape, b)| TensorView::new(*dt, shape.clone(), b).map(|v| (*n, v)).map_err(|e| Error::Msg(format!("save safetensors: tensor `{n}`: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let meta: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Msg(format!("save safetensors: {e}")))
}

/// Write `tensors` to `path` atomically (temp file + fsync + rename).
pub fn save_safetensors(path: &Path, tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<()> {
    write_atomic(path, &safetensors_bytes(tensors, metadata)?)
}

/// What a strict load expects of one tensor.
pub struct Expected {
    pub name: String,
    pub shape: Shape,
    pub dtype: DType,
}

/// Load exactly the `expected` tensors of `path`, and its metadata. Missing and unexpected names
/// are listed; a wrong shape or dtype names the tensor. No conversion happens: a checkpoint must
/// restore bit for bit, so an F32 parameter must be stored as F32.
pub fn load_strict(path: &Path, expected: &[Expected]) -> Result<(BTreeMap<String, Tensor>, BTreeMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| file_err(path, format!("not a valid safetensors file (truncated or bad header?): {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| file_err(path, format!("bad header: {e}")))?;
    let meta: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let names: Vec<&str> = st.names();
    let missing: Vec<&str> = expected.iter().map(|e| e.name.as_str()).filter(|n| !names.contains(n)).collect();
    let mut unexpected: Vec<&str> = names.iter().copied().filter(|n| !expected.iter().any(|e| e.name == *n)).collect();
    unexpected.sort();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(file_err(path, format!("tensor names differ: missing {missing:?}, unexpected {unexpected:?}")));
    }
    let mut out = BTreeMap::new();
    for e in expected {
        let view = st.tensor(&e.name).map_err(|err| file_err(path, format!("tensor `{}`: {err}", e.name)))?;
        let bad = |d: String| file_err(path, format!("tensor `{}`: {d}", e.name));
        if view.shape() != e.shape.dims() {
            return Err(bad(format!("shape {:?}, expected {}", view.shape(), e.shape)));
        }
        let words = view.data().chunks_exact(4).map(|b| [b[0], b[1], b[2], b[3]]);
        let t = match (view.dtype(), e.dtype) {
            (Dtype::F32, DType::F32) => Tensor::from_vec(words.map(f32::from_le_bytes).collect(), e.shape.clone()),
            (Dtype::U32, DType::U32) => Tensor::from_vec_u32(words.map(u32::from_le_bytes).collect(), e.shape.clone()),
            (got, want) => return Err(bad(format!("dtype {got:?}, expected {want:?}"))),
        };
        out.insert(e.name.clone(), t.map_err(|err| bad(err.to_string()))?);
    }
    Ok((out, meta))
}

/// `step-000123` for step 123 (six digits, more when needed; sorts by name up to 10^6 steps).
pub fn step_dir_name(step: usize) -> String {
    format!("step-{step:06}")
}

/// The step of a complete checkpoint directory name (`step-NNNNNN`); None for anything else,
/// including unfinished `step-NNNNNN.tmp-<pid>` directories.
pub fn parse_step_dir(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("step-")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Commit `files` (name, bytes) as the directory `parent/step-NNNNNN`, atomically (`commit_dir`).
/// An existing directory for the same step (an earlier run's) is replaced.
pub fn commit_step_dir(parent: &Path, step: usize, files: &[(&str, Vec<u8>)]) -> Result<PathBuf> {
    let final_dir = parent.join(step_dir_name(step));
    commit_dir(&final_dir, files)?;
    Ok(final_dir)
}

/// Commit `files` (name, bytes) as the directory `final_dir`, atomically: written and fsync'd in
/// `<final_dir>.tmp-<pid>`, the temp directory fsync'd, renamed, the parent fsync'd. An existing
/// `final_dir` is replaced (moved aside first, removed after the rename).
pub fn commit_dir(final_dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let name = final_dir.file_name().ok_or_else(|| file_err(final_dir, "not a directory path"))?.to_string_lossy().into_owned();
    let parent = final_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| file_err(parent, format!("cannot create: {e}")))?;
    let tmp = parent.join(format!("{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| file_err(&tmp, format!("cannot remove a stale temp dir: {e}")))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| file_err(&tmp, format!("cannot create: {e}")))?;
    let staged = (|| {
        for (file, bytes) in files {
            write_synced(&tmp.join(file), bytes)?;
        }
        sync_dir(&tmp)
    })();
    if let Err(e) = staged {
        std::fs::remove_dir_all(&tmp).ok();
        return Err(e);
    }
    if final_dir.exists() {
        // Move the old one aside first: rename cannot replace a non-empty directory.
        let old = parent.join(format!("{name}.old-{}", std::process::id()));
        std::fs::rename(final_dir, &old).map_err(|e| file_err(final_dir, format!("cannot move aside: {e}")))?;
        std::fs::rename(&tmp, final_dir).map_err(|e| file_err(final_dir, format!("cannot rename {} into place: {e}", tmp.display())))?;
        std::fs::remove_dir_all(&old).ok();
    } else {
        std::fs::rename(&tmp, final_dir).map_err(|e| file_err(final_dir, format!("cannot rename {} into place: {e}", tmp.display())))?;
    }
    sync_dir(parent)
}

/// Complete checkpoint directories under `parent`, sorted by step (temp dirs are skipped).
pub fn list_step_dirs(parent: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let rd = std::fs::read_dir(parent).map_err(|e| file_err(parent, format!("cannot list checkpoints: {e}")))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| file_err(parent, format!("cannot list checkpoints: {e}")))?;
        if let Some(step) = entry.file_name().to_str().and_then(parse_step_dir) {
            if entry.path().is_dir() {
                out.push((step, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Remove all but the newest `keep` complete checkpoints under `parent` (keep = 0: keep all).
pub fn prune_step_dirs(parent: &Path, keep: usize) -> Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let dirs = list_step_dirs(parent)?;
    for (_, dir) in dirs.iter().take(dirs.len().saturating_sub(keep)) {
        std::fs::remove_dir_all(dir).map_err(|e| file_err(dir, format!("cannot remove an old checkpoint: {e}")))?;
    }
    Ok(())
}

/// A checkpoint directory from what the user named: the directory itself when it holds
/// `marker` (e.g. state.json), else the newest complete `step-*` under `path/checkpoints/` or
/// under `path/`. Stray `*.tmp-*` directories are never picked.
pub fn resolve_checkpoint(path: &Path, marker: &str) -> Result<PathBuf> {
    if path.join(marker).is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(file_err(path, "no such checkpoint directory"));
    }
    for parent in [path.join("checkpoints"), path.to_path_buf()] {
        if parent.is_dir() {
            if let Some((_, dir)) = list_step_dirs(&parent)?.pop() {
                return Ok(dir);
            }
        }
    }
    Err(file_err(path, format!("no checkpoint here: expected {marker}, or complete step-NNNNNN directories in it or in its checkpoints/ folder")))
}
