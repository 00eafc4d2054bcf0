//! The entry points behind `kiln train` and `kiln eval`: a whole run from a RunConfig into an
//! output directory (config.json, metrics.jsonl, checkpoints/), optionally resumed from a
//! checkpoint, with an indicatif progress bar on a terminal; and the evaluation of a checkpoint.
//!
//! metrics.jsonl has one JSON object per line:
//!   {"kind":"train","step":N,"loss":..,"lr":..,"grad_norm":..,"tokens_per_s":..,"skipped":..}
//!   {"kind":"skip","step":N,"loss":..,"grad_norm":..,"in_a_row":..,"skipped":..}
//!   {"kind":"eval","step":N,"loss":..,"accuracy":..,"tokens":..}
//!   {"kind":"checkpoint","step":N,"path":".."}
//! `step` counts steps done (1-based), like the checkpoint directory names. On resume, lines
//! past the checkpoint's step (from the interrupted run) are dropped, so the file reads as if
//! the run had never stopped.

use super::checkpoint::{self, STATE_FILE};
use super::config::{DataSpec, RunConfig};
use super::trainer::{evaluate, EvalResult, StepReport, Trainer};
use crate::io::checkpoint::{resolve_checkpoint, write_atomic};
use crate::model::Transformer;
use crate::{Error, Result};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a run did (this process's part of it, when resumed).
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// every step taken by this process, in order
    pub steps: Vec<StepReport>,
    /// the held-out evaluation after the last step
    pub eval: EvalResult,
    /// skipped (non-finite) steps over the whole run, resumed part included
    pub skipped: usize,
    /// the newest checkpoint written, if any
    pub checkpoint: Option<PathBuf>,
}

/// Appends JSON lines to OUT/metrics.jsonl.
struct Metrics {
    file: std::fs::File,
    path: PathBuf,
}

impl Metrics {
    /// Open for appending; `keep_upto` (resume) first drops lines with a larger step.
    fn open(out_dir: &Path, keep_upto: Option<usize>) -> Result<Metrics> {
        let path = out_dir.join("metrics.jsonl");
        let err = |d: String| Error::File { path: path.display().to_string(), detail: d };
        if let (Some(limit), true) = (keep_upto, path.exists()) {
            let text = std::fs::read_to_string(&path).map_err(|e| err(format!("cannot read: {e}")))?;
            let kept: String = text
                .lines()
                .filter(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s as usize <= limit))
                .map(|l| format!("{l}\n"))
                .collect();
            write_atomic(&path, kept.as_bytes())?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| err(format!("cannot open: {e}")))?;
        Ok(Metrics { file, path })
    }
    fn log(&mut self, line: serde_json::Value) -> Result<()> {
        writeln!(self.file, "{line}").map_err(|e| Error::File { path: self.path.display().to_string(), detail: format!("cannot write: {e}") })
    }
}

/// A progress bar on stderr when it is a terminal and `wanted`; hidden otherwise.
fn progress_bar(wanted: bool, done: usize, total: usize) -> indicatif::ProgressBar {
    if !wanted {
        return indicatif::ProgressBar::hidden();
    }
    let bar = crate::report::progress(total as u64, "train");
    bar.set_position(done as u64);
    bar
}

/// Train `cfg` into `out_dir`, from scratch or continuing the checkpoint `resume` names (a
/// step directory, or a run directory whose newest complete checkpoint is taken). A fresh run
/// refuses an `out_dir` that already holds one, rather than mixing two runs' files.
pub fn run_training(cfg: &RunConfig, out_dir: &Path, resume: Option<&Path>) -> Result<RunSummary> {
    run_training_on(cfg, out_dir, resume, crate::tensor::Device::Cpu)
}

/// `run_training` with the model, its gradients and the optimizer state on `device`.
/// `cfg.train.dtype` bf16 needs a CUDA device (refused before anything is read or written).
pub fn run_training_on(cfg: &RunConfig, out_dir: &Path, resume: Option<&Path>, device: crate::tensor::Device) -> Result<RunSummary> {
    cfg.validate()?;
    cfg.train.dtype.check_device(device)?;
    let resumed = match resume {
        Some(p) => {
            let dir = resolve_checkpoint(p, STATE_FILE)?;
            let state = checkpoint::load_state(&dir)?;
            checkpoint::check_resumable(&state.run, cfg).map_err(|e| Error::File { path: dir.join(STATE_FILE).display().to_string(), detail: e.to_string() })?;
            Some((dir, state))
        }
        None => {
            let used = ["metrics.jsonl", "checkpoints"].into_iter().find(|f| out_dir.join(f).exists());
            if let Some(f) = used {
                return Err(Error::File { path: out_dir.display().to_string(), detail: format!("already holds a run ({f}); resume it or choose another directory") });
            }
            None
        }
    };
    let hf_tok = cfg.hf_tokenizer();
    let data = cfg.data.load(resumed.as_ref().map(|(_, s)| &s.tokenizer).or(hf_tok.as_ref()))?;
    cfg.check_fits(&data)?;
    let model = Transformer::new(cfg.model.clone())?;
    if let (None, Some(dir)) = (&resumed, &cfg.train.init_from) {
        crate::io::hf::load_weights_into(&model, dir)?;
    }
    model.to_device(device)?;
    let mut trainer = match &resumed {
        Some((dir, state)) => {
            checkpoint::load_params_into(&model, &dir.join(checkpoint::MODEL_FILE))?;
            checkpoint::restore_trainer(dir, state, model, cfg.train.clone(), data.train.len())?
        }
        None => Trainer::new(model, cfg.train.clone(), data.train.len())?,
    };

    std::fs::create_dir_all(out_dir).map_err(|e| Error::File { path: out_dir.display().to_string(), detail: format!("cannot create: {e}") })?;
    let config_json = serde_json::to_vec_pretty(cfg).map_err(|e| Error::Msg(format!("config.json: {e}")))?;
    write_atomic(&out_dir.join("config.json"), &config_json)?;
    let mut metrics = Metrics::open(out_dir, resumed.as_ref().map(|(_, s)| s.step))?;
    let t = &cfg.train;
    let bar = progress_bar(t.progress, trainer.step, t.steps);
    let eval_now = |trainer: &Trainer, metrics: &mut Metrics| -> Result<EvalResult> {
        let r = evaluate(&trainer.model, data.eval.as_ref(), t.batch_size, t.eval_batches)?;
        metrics.log(json!({"kind": "eval", "step": trainer.step, "loss": r.loss, "accuracy": r.accuracy, "tokens": r.tokens}))?;
        Ok(r)
    };

    let mut reports = Vec::new();
    let mut checkpoint_dir = None;
    let (mut clock, mut tokens_since) = (Instant::now(), 0usize);
    while trainer.step < t.steps {
        let r = match trainer.step(data.train.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                bar.abandon();
                metrics.log(json!({"kind": "stopped", "step": trainer.step, "error": e.to_string()}))?;
                return Err(e);
            }
        };
        let done = trainer.step;
        tokens_since += r.tokens;
        if r.skipped {
            metrics.log(json!({"kind": "skip", "step": done, "loss": finite_or_string(r.loss), "grad_norm": finite_or_string(r.grad_norm), "in_a_row": trainer.bad_in_a_row, "skipped": trainer.skipped}))?;
        } else if done % t.log_every == 0 || done == t.steps {
            let tps = tokens_since as f64 / clock.elapsed().as_secs_f64().max(1e-9);
            metrics.log(json!({"kind": "train", "step": done, "loss": r.loss, "lr": r.lr, "grad_norm": r.grad_norm, "tokens_per_s": tps, "skipped": trainer.skipped}))?;
            bar.set_message(format!("loss {:.4}  lr {:.2e}  {:.0} tok/s", r.loss, r.lr, tps));
            (clock, tokens_since) = (Instant::now(), 0);
        }
        bar.set_position(done as u64);
        reports.push(r);
        if t.eval_every > 0 && done % t.eval_every == 0 && done < t.steps {
            let e = eval_now(&trainer, &mut metrics)?;
            bar.println(format!("step {done}: eval loss {:.4}, accuracy {:.4}", e.loss, e.accuracy));
        }
        if t.checkpoint_every > 0 && done % t.checkpoint_every == 0 || t.save_final && done == t.steps {
            let dir = checkpoint::save(&trainer, cfg, &data.tokenizer, out_dir)?;
            metrics.log(json!({"kind": "checkpoint", "step": done, "path": dir.display().to_string()}))?;
            checkpoint_dir = Some(dir);
        }
    }
    bar.finish_and_clear();
    if let (Some(dir), Some(_)) = (&t.init_from, &cfg.model.lora) {
        crate::io::hf::save_adapter(&trainer.model, &out_dir.join("adapter"), Some(&dir.display().to_string()))?;
    }
    let eval = eval_now(&trainer, &mut metrics)?;
    Ok(RunSummary { steps: reports, eval, skipped: trainer.skipped, checkpoint: checkpoint_dir })
}

/// JSON has no NaN: non-finite numbers are written as strings ("NaN", "inf").
fn finite_or_string(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        json!(x.to_string())
    }
}

/// A checkpoint's model with its state (config, tokenizer): what `kiln generate` and
/// `kiln eval` start from. `path` as for resume: a step directory or a run directory.
pub fn load_checkpoint(path: &Path) -> Result<(Transformer, checkpoint::TrainState)> {
    let dir = resolve_checkpoint(path, STATE_FILE)?;
    let state = checkpoint::load_state(&dir)?;
    let model = checkpoint::load_model(&dir, &state)?;
    Ok((model, state))
}

/// Mean loss and accuracy of a checkpoint on its own held-out data, or on `data` (tokenized with
/// the checkpoint's tokenizer). `max_batches` = 0: the whole held-out set.
pub fn run_eval(path: &Path, data: Option<&DataSpec>, batch_size: usize, max_batches: usize) -> Result<EvalResult> {
    let (model, state) = load_checkpoint(path)?;
    let spec = data.unwrap_or(&state.run.data);
    let data = spec.load(Some(&state.tokenizer))?;
    RunConfig { data: spec.clone(), ..state.run.clone() }.check_fits(&data)?;
    evaluate(&model, data.eval.as_ref(), batch_size, max_batches)
}
