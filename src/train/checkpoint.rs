//! Training checkpoints: `OUT/checkpoints/step-NNNNNN/` holding
//! - model.safetensors: every parameter by its HF name, in kiln's layout (Linear weights
//!   (in, out); the metadata field `layout` says so; io::hf transposes for HF's (out, in));
//! - optimizer.safetensors: AdamW's `<name>.exp_avg` (m) and `<name>.exp_avg_sq` (v) for every
//!   trainable parameter (zeros where AdamW has not created them yet: the same thing);
//! - state.json: step, AdamW step count, data cursor, skip counters, the data-order RNG, the
//!   kiln version, the whole RunConfig and the tokenizer.
//!
//! Written and committed atomically by io::checkpoint (temp dir, fsync, rename), so a crash
//! leaves either the previous checkpoint or the new one. Loading is strict and names the file
//! and the tensor or field at fault, because resuming must repeat the run bit for bit.

use super::config::RunConfig;
use super::data::Cursor;
use super::tokenizer::Tokenizer;
use super::trainer::Trainer;
use crate::io::checkpoint::{commit_step_dir, load_strict, prune_step_dirs, safetensors_bytes, Expected};
use crate::model::Transformer;
use crate::tensor::{DType, Tensor};
use crate::{no_grad, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "state.json";

/// The counter-based generator behind the data order: the permutation of epoch e is a pure
/// function of (seed, e), so (seed, cursor) is the whole random state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngState {
    pub generator: String,
    pub seed: u64,
}

/// state.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    pub kiln_version: String,
    /// optimizer steps taken (skipped ones included)
    pub step: usize,
    /// AdamW's own step count (bias correction); lags `step` by the skipped steps
    pub adamw_step: u64,
    pub cursor: Cursor,
    pub skipped: usize,
    pub bad_in_a_row: usize,
    pub rng: RngState,
    pub run: RunConfig,
    pub tokenizer: Tokenizer,
}

fn m_name(p: &str) -> String {
    format!("{p}.exp_avg")
}
fn v_name(p: &str) -> String {
    format!("{p}.exp_avg_sq")
}

/// Write a checkpoint of `trainer` under `out_dir/checkpoints/` and keep the newest
/// `keep_checkpoints`. Returns the committed directory.
pub fn save(trainer: &Trainer, run: &RunConfig, tokenizer: &Tokenizer, out_dir: &Path) -> Result<PathBuf> {
    let model = &trainer.model;
    // One metadata key per file: the safetensors crate writes metadata from a HashMap, so
    // several keys would come out in a random order and equal states in unequal bytes.
    let meta = BTreeMap::from([("layout".to_string(), "kiln: HF names, Linear weights (in, out); HF stores them (out, in)".to_string())]);
    let model_bytes = safetensors_bytes(&model.named_params(), &meta)?;

    let mut moments = Vec::new();
    for (name, p) in trainer.params() {
        let (m, v) = match trainer.opt.state.get(name) {
            Some((m, v)) => (m.clone(), v.clone()),
            None => (Tensor::zeros(p.shape().clone(), p.dtype(), p.device())?, Tensor::zeros(p.shape().clone(), p.dtype(), p.device())?),
        };
        moments.push((m_name(name), m));
        moments.push((v_name(name), v));
    }
    let meta = BTreeMap::from([("adamw_step".to_string(), trainer.opt.step.to_string())]);
    let opt_bytes = safetensors_bytes(&moments, &meta)?;

    let state = TrainState {
        kiln_version: env!("CARGO_PKG_VERSION").to_string(),
        step: trainer.step,
        adamw_step: trainer.opt.step,
        cursor: trainer.cursor(),
        skipped: trainer.skipped,
        bad_in_a_row: trainer.bad_in_a_row,
        rng: RngState { generator: "philox4x32-10".into(), seed: trainer.cfg.seed },
        run: RunConfig { train: trainer.cfg.clone(), ..run.clone() },
        tokenizer: tokenizer.clone(),
    };
    let state_bytes = serde_json::to_vec_pretty(&state).map_err(|e| Error::Msg(format!("state.json: {e}")))?;
    let parent = out_dir.join("checkpoints");
    let dir = commit_step_dir(&parent, trainer.step, &[(MODEL_FILE, model_bytes), (OPTIMIZER_FILE, opt_bytes), (STATE_FILE, state_bytes)])?;
    prune_step_dirs(&parent, trainer.cfg.keep_checkpoints)?;
    Ok(dir)
}

/// Read and check `dir/state.json`; errors name the file and the field.
pub fn load_state(dir: &Path) -> Result<TrainState> {
    let path = dir.join(STATE_FILE);
    let err = |d: String| Error::File { path: path.display().to_string(), detail: d };
    let text = std::fs::read_to_string(&path).map_err(|e| err(format!("cannot read: {e}")))?;
    let state: TrainState = super::config::parse_json(&text).map_err(|e| err(format!("bad state: {e}")))?;
    state.run.validate().map_err(|e| err(e.to_string()))?;
    state.tokenizer.validate().map_err(|e| err(e.to_string()))?;
    if state.adamw_step > state.step as u64 {
        return Err(err(format!("field `adamw_step` {} exceeds field `step` {}", state.adamw_step, state.step)));
    }
    if state.skipped > state.step || state.skipped as u64 != state.step as u64 - state.adamw_step {
        return Err(err(format!("field `skipped` {} does not match step {} - adamw_step {}", state.skipped, state.step, state.adamw_step)));
    }
    Ok(state)
}

/// Build the model of `state` from scratch and load `dir/model.safetensors` into it.
pub fn load_model(dir: &Path, state: &TrainState) -> Result<Transformer> {
    let model = Transformer::new(state.run.model.clone()).map_err(|e| Error::File { path: dir.join(STATE_FILE).display().to_string(), detail: e.to_string() })?;
    load_params_into(&model, &dir.join(MODEL_FILE))?;
    Ok(model)
}

/// Copy every parameter of `model` from a kiln-layout safetensors file, exactly.
pub fn load_params_into(model: &Transformer, path: &Path) -> Result<()> {
    let params = model.named_params();
    let expected: Vec<Expected> = params.iter().map(|(n, p)| Expected { name: n.clone(), shape: p.shape().clone(), dtype: DType::F32 }).collect();
    let (tensors, _) = load_strict(path, &expected)?;
    let _ng = no_grad();
    for (name, p) in &params {
        p.assign(&tensors[name].to_device(p.device())?)?;
    }
    Ok(())
}

/// A trainer for `model` restored to the checkpoint in `dir`: AdamW moments and step count,
/// step, data cursor and skip counters. `cfg` is this run's train config (checked compatible).
pub fn restore_trainer(dir: &Path, state: &TrainState, model: Transformer, cfg: super::TrainConfig, n_train: usize) -> Result<Trainer> {
    let mut t = Trainer::at(model, cfg, n_train, state.cursor).map_err(|e| Error::File { path: dir.join(STATE_FILE).display().to_string(), detail: e.to_string() })?;
    let path = dir.join(OPTIMIZER_FILE);
    let mut expected = Vec::new();
    for (name, p) in t.params() {
        for n in [m_name(name), v_name(name)] {
            expected.push(Expected { name: n, shape: p.shape().clone(), dtype: DType::F32 });
        }
    }
    let (mut tensors, meta) = load_strict(&path, &expected)?;
    if let Some(s) = meta.get("adamw_step") {
        if s.parse::<u64>().ok() != Some(state.adamw_step) {
            return Err(Error::File { path: path.display().to_string(), detail: format!("metadata adamw_step {s} disagrees with state.json's {}", state.adamw_step) });
        }
    }
    let mut opt_state = BTreeMap::new();
    for (name, p) in t.params() {
        let m = tensors.remove(&m_name(name)).expect("checked by load_strict").to_device(p.device())?;
        let v = tensors.remove(&v_name(name)).expect("checked by load_strict").to_device(p.device())?;
        opt_state.insert(name.clone(), (m, v));
    }
    t.opt.state = opt_state;
    t.opt.step = state.adamw_step;
    t.step = state.step;
    t.skipped = state.skipped;
    t.bad_in_a_row = state.bad_in_a_row;
    Ok(t)
}

/// Refuse to resume a run under a different model, data, or trajectory-changing train setting,
/// naming the first differing field. Fields that do not change the numbers (steps, logging,
/// eval and checkpoint cadence, progress, the NaN test hook) may change, and so may `dtype`.
pub fn check_resumable(saved: &RunConfig, now: &RunConfig) -> Result<()> {
    // `dtype`, like the device, is how the steps are computed: a checkpoint holds f32 masters and
    // f32 moments either way, so a bf16 run may continue in f32 and the other way round.
    const FREE: &[&str] = &["steps", "log_every", "eval_every", "eval_batches", "checkpoint_every", "save_final", "keep_checkpoints", "max_bad_steps_in_a_row", "progress", "inject_nan_at_steps", "dtype"];
    let to_value = |c: &RunConfig| {
        let mut v = serde_json::to_value(c).map_err(|e| Error::Msg(format!("resume: {e}")))?;
        if let Some(train) = v.get_mut("train").and_then(|t| t.as_object_mut()) {
            train.retain(|k, _| !FREE.contains(&k.as_str()));
        }
        Ok::<_, Error>(v)
    };
    if let Some((field, a, b)) = first_difference(&to_value(saved)?, &to_value(now)?, String::new()) {
        return Err(Error::Msg(format!("resume: config field `{field}` differs: the checkpoint has {a}, this run has {b}")));
    }
    Ok(())
}

/// The first path (a.b.c) where two JSON values differ, with both values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: String) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                first_difference(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), p)
            })
        }
        _ if a == b => None,
        _ => Some((path, a.to_string(), b.to_string())),
    }
}
