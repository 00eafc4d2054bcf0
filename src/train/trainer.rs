//! `Trainer`: one optimizer step at a time over a `Dataset`, and the eval loop.
//!
//! A step draws batch_size * grad_accum example indices from the shuffled stream (Sampler),
//! runs each micro-batch forward and backward with its loss scaled by 1/grad_accum, sums the
//! gradients (Grads::accumulate), clips the global norm, and takes one AdamW step at
//! lr * schedule(step). A non-finite loss or gradient norm skips the update (the data is still
//! consumed, so the stream stays where an uninterrupted run would have it), is counted, and
//! after `max_bad_steps_in_a_row` in a row stops training with an error.
//!
//! With `dtype` bf16 the model holds f32 master weights and each step's forward and backward run
//! on a bf16 copy of them (precision.rs); AdamW updates the masters.
//!
//! Everything a step depends on is (parameters, AdamW m/v/step, step, data cursor, config), and
//! every one of them is saved in a checkpoint (checkpoint.rs): resuming repeats bit for bit.

use super::config::TrainConfig;
use super::data::{Batch, Cursor, Dataset, Sampler, IGNORE};
use super::precision::Working;
use crate::model::Transformer;
use crate::nn::NamedParams;
use crate::optim::{clip_grad_norm, grad_norm, AdamW};
use crate::tensor::{DType, Tensor};
use crate::{backward, no_grad, Error, Grads, Result};

/// What one step did.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// the step just taken, 1-based (= steps done after it; checkpoints and metrics count so)
    pub step: usize,
    /// mean loss over the step's micro-batches (NaN/Inf when skipped for that reason)
    pub loss: f64,
    pub lr: f64,
    /// global gradient norm before clipping (NaN when the loss was already non-finite)
    pub grad_norm: f64,
    /// input tokens processed (B * T * grad_accum)
    pub tokens: usize,
    /// true when the update was skipped for a non-finite loss or gradient norm
    pub skipped: bool,
}

#[derive(Clone, Debug)]
pub struct Trainer {
    pub model: Transformer,
    pub cfg: TrainConfig,
    pub opt: AdamW,
    /// steps taken so far, skipped ones included (the schedule's clock)
    pub step: usize,
    /// skipped (non-finite) steps so far, and how many of the latest were in a row
    pub skipped: usize,
    pub bad_in_a_row: usize,
    sampler: Sampler,
    params: NamedParams,
}

impl Trainer {
    /// A trainer at step 0 over a training set of `n_train` examples, data cursor at the start.
    pub fn new(model: Transformer, cfg: TrainConfig, n_train: usize) -> Result<Trainer> {
        Self::at(model, cfg, n_train, Cursor::default())
    }

    /// A trainer whose data stream stands at `cursor` (resume sets the rest of the state).
    pub fn at(model: Transformer, cfg: TrainConfig, n_train: usize, cursor: Cursor) -> Result<Trainer> {
        cfg.validate()?;
        cfg.dtype.check_device(model.device())?;
        let mut opt = AdamW::new(cfg.weight_decay);
        (opt.beta1, opt.beta2, opt.eps) = (cfg.beta1, cfg.beta2, cfg.eps);
        let params = model.trainable_params();
        if params.is_empty() {
            return Err(Error::Msg("trainer: the model has no trainable parameters".into()));
        }
        let sampler = Sampler::new(cfg.seed, n_train, cursor)?;
        Ok(Trainer { model, cfg, opt, step: 0, skipped: 0, bad_in_a_row: 0, sampler, params })
    }

    pub fn cursor(&self) -> Cursor {
        self.sampler.cursor()
    }

    /// The parameters being trained, by name.
    pub fn params(&self) -> &NamedParams {
        &self.params
    }

    /// The learning rate of step `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        self.cfg.lr * self.cfg.schedule.factor(step)
    }

    /// One optimizer step. Errors on bad data, or once too many non-finite steps came in a row.
    pub fn step(&mut self, data: &dyn Dataset) -> Result<StepReport> {
        let (b, accum) = (self.cfg.batch_size, self.cfg.grad_accum);
        let indices = self.sampler.take(b * accum);
        let lr = self.lr_at(self.step);
        let inject = self.cfg.inject_nan_at_steps.contains(&(self.step + 1));
        let mut grads = Grads::default();
        let (mut loss, mut tokens) = (0.0, 0);
        // f32: the model itself; bf16: this step's bf16 copy of the f32 masters (precision.rs)
        let work = Working::new(&self.model, &self.params, self.cfg.dtype)?;
        let model = work.model(&self.model);
        for chunk in indices.chunks(b) {
            let batch = Batch::gather(data, chunk)?;
            tokens += batch.ids.elem_count();
            let dev = model.wte.device();
            // ids, targets: (B, T) -> f32 scalar (bf16 logits are cast to f32 first)
            let mut l = model.loss(&batch.ids.to_device(dev)?, &batch.targets.to_device(dev)?, IGNORE)?;
            if inject {
                l = l.scale(f64::NAN)?;
            }
            let value = l.to_scalar()?;
            loss += value / accum as f64;
            if !value.is_finite() {
                continue; // the step is lost; skip the backward passes, keep consuming data
            }
            let l = if accum > 1 { l.scale(1.0 / accum as f64)? } else { l };
            // keyed by the masters; bf16 gradients summed over micro-batches are summed in f32
            grads.accumulate(work.master_grads(backward(&l)?, accum > 1)?)?;
        }
        drop(work); // the bf16 copy (if any) is not needed for the update: free it first
        let tensors: Vec<Tensor> = self.params.iter().map(|(_, p)| p.clone()).collect();
        let norm = if !loss.is_finite() {
            f64::NAN
        } else if let Some(max) = self.cfg.clip_grad_norm {
            clip_grad_norm(&tensors, &mut grads, max)?
        } else {
            grad_norm(&tensors, &grads)?
        };
        let skipped = !(loss.is_finite() && norm.is_finite());
        let report = StepReport { step: self.step + 1, loss, lr, grad_norm: norm, tokens, skipped };
        self.step += 1;
        if skipped {
            self.skipped += 1;
            self.bad_in_a_row += 1;
            if self.bad_in_a_row >= self.cfg.max_bad_steps_in_a_row {
                let first = report.step + 1 - self.bad_in_a_row;
                return Err(Error::Msg(format!(
                    "training stopped: {} non-finite steps in a row (steps {first}..={}, limit max_bad_steps_in_a_row = {}); last loss {loss}, grad norm {norm}; {} skipped in all",
                    self.bad_in_a_row, report.step, self.cfg.max_bad_steps_in_a_row, self.skipped
                )));
            }
        } else {
            self.bad_in_a_row = 0;
            self.opt.step(&self.params, &grads, lr)?;
        }
        Ok(report)
    }

    /// Up to `steps` steps on `data` behind a progress bar named `label` (drawn only on a
    /// terminal). `watch(step, model)` runs before the first step (step 0) and after each one;
    /// training stops early once it returns true. Returns the steps taken and the mean finite
    /// loss over the last 5% of `steps` (NaN when it stopped before reaching them).
    pub fn run(&mut self, data: &dyn Dataset, steps: usize, label: &str, watch: &mut dyn FnMut(usize, &Transformer) -> Result<bool>) -> Result<(usize, f64)> {
        let bar = crate::report::progress(steps as u64, label);
        let tail = (steps / 20).max(1);
        let (mut sum, mut n, mut taken) = (0.0, 0usize, 0);
        let mut stop = watch(0, &self.model)?;
        while !stop && taken < steps {
            let r = self.step(data)?;
            taken += 1;
            if taken + tail > steps && r.loss.is_finite() {
                sum += r.loss;
                n += 1;
            }
            if taken % 10 == 0 || taken == steps {
                bar.set_position(taken as u64);
                bar.set_message(format!("loss {:.3}", r.loss));
            }
            stop = watch(taken, &self.model)?;
        }
        bar.finish_and_clear();
        Ok((taken, if n > 0 { sum / n as f64 } else { f64::NAN }))
    }
}

/// Mean loss and next-token accuracy over the targets that are not IGNORE.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EvalResult {
    /// mean cross-entropy per target token (nats)
    pub loss: f64,
    /// fraction of target tokens where the argmax prediction is the target
    pub accuracy: f64,
    /// target tokens and examples evaluated
    pub tokens: usize,
    pub examples: usize,
}

/// Evaluate `model` on `data` in index order, `batch_size` examples at a time, at most
/// `max_batches` batches (0 = all).
pub fn evaluate(model: &Transformer, data: &dyn Dataset, batch_size: usize, max_batches: usize) -> Result<EvalResult> {
    let _ng = no_grad();
    if batch_size == 0 {
        return Err(Error::Msg("evaluate: batch_size must be at least 1".into()));
    }
    let n_batches = data.len().div_ceil(batch_size);
    let n_batches = if max_batches == 0 { n_batches } else { n_batches.min(max_batches) };
    let (mut loss_sum, mut correct, mut tokens, mut examples) = (0.0, 0usize, 0usize, 0usize);
    for k in 0..n_batches {
        let idx: Vec<usize> = (k * batch_size..((k + 1) * batch_size).min(data.len())).collect();
        let batch = Batch::gather(data, &idx)?;
        let dev = model.wte.device();
        let logits = model.forward(&batch.ids.to_device(dev)?, 0, None)?; // (B, T, V)
        // a bf16 model's loss is taken on f32 logits, as in training (Transformer::loss)
        let f32_logits = if logits.dtype() == DType::BF16 { logits.to_dtype(DType::F32)? } else { logits.clone() };
        let loss = Tensor::cross_entropy(&f32_logits, &batch.targets.to_device(dev)?, IGNORE)?.to_scalar()?;
        let pred = logits.argmax(-1, false)?.to_vec_u32()?; // (B, T)
        let targets = batch.targets.to_vec_u32()?;
        correct += pred.iter().zip(&targets).filter(|(p, y)| **y != IGNORE && p == y).count();
        loss_sum += loss * batch.n_targets as f64;
        tokens += batch.n_targets;
        examples += idx.len();
    }
    if tokens == 0 {
        return Err(Error::Msg("evaluate: the data has no target tokens to score".into()));
    }
    Ok(EvalResult { loss: loss_sum / tokens as f64, accuracy: correct as f64 / tokens as f64, tokens, examples })
}
