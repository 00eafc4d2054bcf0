//! The experiment: pretrain one tiny LM on every task, read it out, forget each task in turn
//! from a copy of it, read every copy out again.
//!
//! Readouts at the QUERY position (the last one):
//!   prediction   argmax over the task's k label logits (multiple-choice scoring)
//!   confidence   the softmax probability of that argmax, over the k labels only
//!   hidden       every block's output (B, T, C) -> (B, C) rows, for the probes and variability
//! Probes: multinomial logistic regression (src/linalg/logreg.rs) per task and layer, fitted on
//! the probe-fit split with TRUE labels, scored on the probe-test split; features standardised
//! with the fit split's mean and spread.

use super::tasks::{random_label, Examples, Item, TaskSplits, LABEL0, SEQ_LEN};
use super::Config;
pub use crate::methods::training::{train, PhaseStats};
use crate::linalg::{standardise, standardiser, LogReg, LogRegOptions};
use crate::model::{Config as ModelConfig, Transformer};
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};

/// What a model does on a list of one task's items.
pub struct Readout {
    pub pred: Vec<usize>,
    pub confidence: Vec<f64>,
    /// per block: (N, C) row-major, empty unless asked for
    pub hidden: Vec<Vec<f64>>,
    pub width: usize,
}

impl Readout {
    /// Fraction of items whose prediction equals `labels[i]`.
    pub fn accuracy(&self, labels: &[usize]) -> f64 {
        let hits = self.pred.iter().zip(labels).filter(|(p, y)| p == y).count();
        hits as f64 / self.pred.len().max(1) as f64
    }
}

/// The true labels of `items`.
pub fn labels(items: &[Item]) -> Vec<usize> {
    items.iter().map(|i| i.label).collect()
}

/// Read `model` out on `items` (all of one task with `k` choices), 256 at a time.
pub fn read(model: &Transformer, items: &[Item], k: usize, hidden: bool) -> Result<Readout> {
    let _ng = no_grad();
    let (n_layers, c) = (model.cfg.n_layers, model.cfg.d_model);
    let mut out = Readout { pred: Vec::new(), confidence: Vec::new(), hidden: vec![Vec::new(); if hidden { n_layers } else { 0 }], width: c };
    for chunk in items.chunks(256) {
        let b = chunk.len();
        let ids: Vec<u32> = chunk.iter().flat_map(|it| it.example(it.label).ids).collect();
        let ids = Tensor::from_vec_u32(ids, [b, SEQ_LEN])?.to_device(model.device())?;
        let (logits, states) = model.forward_hidden(&ids, 0, None, hidden)?; // (B, T, V), L x (B, T, C)
        let v = model.cfg.vocab_size;
        let logits = logits.to_vec_f32()?;
        for row in 0..b {
            let at = (row * SEQ_LEN + SEQ_LEN - 1) * v + LABEL0 as usize;
            let z = &logits[at..at + k];
            let (arg, max) = z.iter().enumerate().fold((0, f32::NEG_INFINITY), |(ai, am), (i, &x)| if x > am { (i, x) } else { (ai, am) });
            let sum: f64 = z.iter().map(|&x| ((x - max) as f64).exp()).sum();
            out.pred.push(arg);
            out.confidence.push(1.0 / sum);
        }
        for (layer, s) in states.iter().enumerate() {
            let s = s.to_vec_f32()?;
            for row in 0..b {
                let at = (row * SEQ_LEN + SEQ_LEN - 1) * c;
                out.hidden[layer].extend(s[at..at + c].iter().map(|&x| x as f64));
            }
        }
    }
    Ok(out)
}

/// Spread of the last block's QUERY states: mean |h_i - mean h|^2 / mean |h_i|^2, in [0, 1]
/// (0: every item looks the same to the model; 1: the states have no common part).
pub fn variability(r: &Readout) -> f64 {
    let Some(h) = r.hidden.last() else { return f64::NAN };
    let (c, n) = (r.width, h.len() / r.width.max(1));
    if n == 0 {
        return f64::NAN;
    }
    let mut mean = vec![0.0; c];
    h.chunks(c).for_each(|row| mean.iter_mut().zip(row).for_each(|(m, x)| *m += x / n as f64));
    let spread: f64 = h.chunks(c).map(|row| row.iter().zip(&mean).map(|(x, m)| (x - m).powi(2)).sum::<f64>()).sum();
    let power: f64 = h.iter().map(|x| x * x).sum();
    if power > 0.0 {
        spread / power
    } else {
        f64::NAN
    }
}

/// Probe accuracy per layer: fit on `fit` (true labels), score on `test`.
pub fn probe_accuracies(fit: &Readout, y_fit: &[usize], test: &Readout, y_test: &[usize], k: usize, c_reg: f64) -> Result<Vec<f64>> {
    let f = fit.width;
    let opts = LogRegOptions { c: c_reg, max_iter: 200, ..LogRegOptions::default() };
    fit.hidden
        .iter()
        .zip(&test.hidden)
        .map(|(xf, xt)| {
            let (nf, nt) = (xf.len() / f, xt.len() / f);
            let (mean, scale) = standardiser(xf, f);
            let probe = LogReg::fit(&standardise(xf, &mean, &scale), nf, f, y_fit, k, &opts)?;
            probe.accuracy(&standardise(xt, &mean, &scale), nt, y_test)
        })
        .collect()
}

/// The model: GPT-2 style, untied embeddings, `cfg`'s width, depth and heads.
pub fn model_config(cfg: &Config, vocab: usize) -> ModelConfig {
    crate::methods::training::gpt2_config(vocab, cfg.width, cfg.layers, cfg.heads, SEQ_LEN, cfg.seed)
}

/// The pretraining mixture: every task's pretraining items with their true labels.
pub fn pretrain_data(tasks: &[TaskSplits]) -> Result<Examples> {
    let ex: Vec<_> = tasks.iter().flat_map(|t| t.pretrain.iter().map(|i| i.example(i.label))).collect();
    if ex.is_empty() {
        return Err(Error::Msg("forgetting: no pretraining examples (sizes.pretrain is 0)".into()));
    }
    Ok(Examples(ex))
}

/// Task `t`'s forgetting set with its fixed random labels, and those labels.
pub fn forget_data(t: &TaskSplits, seed: u64) -> (Examples, Vec<usize>) {
    let labels: Vec<usize> = t.forget.iter().enumerate().map(|(i, it)| random_label(seed, it.task, i, t.k)).collect();
    let ex = t.forget.iter().zip(&labels).map(|(it, &y)| it.example(y)).collect();
    (Examples(ex), labels)
}
