//! `kiln intruders experiment`: the paper's comparison at CPU scale. Pre-train a small Llama-style
//! character model on the built-in corpus; fine-tune copies of it on a downstream task (reverse a
//! sequence of symbols, loss on the answer only) with LoRA at several ranks (alpha = 2r), rsLoRA
//! at the same ranks, and full fine-tuning, each until it reaches the same task accuracy (or a step
//! cap); count intruder dimensions against the pre-trained weights; measure forgetting as the
//! loss on the pre-training data after fine-tuning; then scale the intruders' singular values down.

use super::analyze::{analyze, block_matrices, eps_key, scale_intruders, Analysis, Matrix};
use super::Config;
use crate::model::{Arch, Config as ModelConfig, Transformer};
use crate::nn::{Init, LoraConfig};
use crate::train::{evaluate, DataSpec, Dataset, SeqDataset, SeqTask, Split, TextTokenizer, TrainConfig, Trainer};
use crate::{Error, Result, Tensor};
use serde::Serialize;
use std::collections::BTreeMap;

/// One fine-tuning run's outcome (the report.json `runs` entry).
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// "lora", "rslora" or "full"
    pub method: String,
    /// LoRA rank; 0 for full fine-tuning
    pub rank: usize,
    pub trainable_params: usize,
    pub steps: usize,
    pub task_acc: f64,
    /// loss (nats/char) on the pre-training windows after fine-tuning
    pub pretrain_loss: f64,
    pub intruders_eps: BTreeMap<String, usize>,
    /// per matrix: intruders at eps 0.5
    pub per_matrix: BTreeMap<String, usize>,
}

/// One point of the scale-down trade-off.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleDown {
    pub method: String,
    pub rank: usize,
    pub lambda: f64,
    pub directions: usize,
    pub task_acc: f64,
    pub pretrain_loss: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Experiment {
    pub base_pretrain_loss: f64,
    pub base_task_acc: f64,
    pub runs: Vec<RunResult>,
    pub scale_down: Vec<ScaleDown>,
}

/// A copy of `base` (no adapters) whose block matrices are `mats` (kiln layout).
fn with_matrices(base: &Transformer, mats: &[Matrix]) -> Result<Transformer> {
    let m = base.deep_clone()?;
    let params: BTreeMap<String, Tensor> = m.named_params().into_iter().collect();
    for x in mats {
        let t = params.get(&format!("{}.weight", x.name)).ok_or_else(|| Error::Msg(format!("intruders: no parameter `{}.weight`", x.name)))?;
        t.assign(&Tensor::from_vec(x.w.clone(), [x.d_in, x.d_out])?.to_device(t.device())?)?;
    }
    Ok(m)
}

struct Data {
    corpus_train: Box<dyn Dataset>,
    task_train: SeqDataset,
    task_eval: SeqDataset,
    vocab: usize,
}

fn data(cfg: &Config) -> Result<Data> {
    let d = DataSpec::Text { path: None, tokenizer: TextTokenizer::Char, seq_len: cfg.seq_len, eval_fraction: 0.1 }.load(None)?;
    let vocab = d.tokenizer.vocab_size();
    if cfg.task_symbols + 1 > vocab {
        return Err(Error::Msg(format!("intruders: task_symbols {} needs a vocabulary of more than {vocab}", cfg.task_symbols)));
    }
    // The task's symbols are the first character ids of the corpus vocabulary; id task_symbols is
    // the separator. Sequences are 2 len + 1 tokens.
    let n = cfg.task_examples;
    let task_train = SeqDataset::new(SeqTask::Reverse, cfg.task_len, cfg.task_symbols as u32, n, cfg.seed, Split::Train)?;
    let task_eval = SeqDataset::new(SeqTask::Reverse, cfg.task_len, cfg.task_symbols as u32, 256, cfg.seed, Split::Eval)?;
    Ok(Data { corpus_train: d.train, task_train, task_eval, vocab })
}

fn task_acc(m: &Transformer, d: &Data) -> Result<f64> {
    Ok(evaluate(m, &d.task_eval, 64, 0)?.accuracy)
}
/// The pre-training loss: on the pre-training windows themselves. The built-in corpus is a few
/// thousand characters, so a pre-trained model has memorised it and its held-out loss says little;
/// forgetting shows as this loss rising after fine-tuning.
fn corpus_loss(m: &Transformer, d: &Data) -> Result<f64> {
    Ok(evaluate(m, &*d.corpus_train, 16, 0)?.loss)
}

fn train_cfg(cfg: &Config, steps: usize, lr: f64) -> TrainConfig {
    TrainConfig { steps, batch_size: cfg.batch_size, lr, seed: cfg.seed, progress: false, weight_decay: 0.0, ..TrainConfig::default() }
}

/// Fine-tune until the task accuracy reaches cfg.target_acc (checked every eval_every steps) or
/// cfg.ft_steps steps; returns the trained model and the steps taken.
fn fine_tune(model: Transformer, cfg: &Config, d: &Data, lr: f64, bar: &indicatif::ProgressBar) -> Result<(Transformer, usize)> {
    let mut trainer = Trainer::new(model, train_cfg(cfg, cfg.ft_steps, lr), d.task_train.len())?;
    for step in 1..=cfg.ft_steps {
        trainer.step(&d.task_train)?;
        bar.inc(1);
        if step % cfg.eval_every == 0 && task_acc(&trainer.model, d)? >= cfg.target_acc {
            return Ok((trainer.model, step));
        }
    }
    Ok((trainer.model, cfg.ft_steps))
}

fn model_config(cfg: &Config, vocab: usize) -> ModelConfig {
    let mut mc = ModelConfig::tiny(Arch::Llama, vocab);
    (mc.d_model, mc.n_layers, mc.n_heads, mc.n_kv_heads, mc.max_seq_len, mc.seed) =
        (cfg.d_model, cfg.n_layers, cfg.n_heads, Some(cfg.n_heads), cfg.seq_len.max(2 * cfg.task_len + 1), cfg.seed);
    mc.tie_embeddings = false;
    mc
}

/// Run the whole experiment (see the module docs).
pub fn run_experiment(cfg: &Config) -> Result<(Experiment, Option<Analysis>)> {
    let d = data(cfg)?;
    let total = cfg.pretrain_steps + cfg.ft_steps * (2 * cfg.ranks.len() + 1);
    let bar = crate::report::progress(total as u64, "intruders");
    // 1. pre-train
    let model = Transformer::new(model_config(cfg, d.vocab))?;
    model.to_device(cfg.device)?;
    let mut pre = Trainer::new(model, train_cfg(cfg, cfg.pretrain_steps, cfg.lr_pretrain), d.corpus_train.len())?;
    for _ in 0..cfg.pretrain_steps {
        pre.step(&*d.corpus_train)?;
        bar.inc(1);
    }
    let base = pre.model;
    let base_mats = block_matrices(&base)?;
    let (base_pretrain_loss, base_task_acc) = (corpus_loss(&base, &d)?, task_acc(&base, &d)?);
    // 2. fine-tune each variant from a fresh copy of the base
    let targets: Vec<String> = ["q", "k", "v", "o", "gate", "up", "down"].iter().map(|s| s.to_string()).collect();
    let mut variants: Vec<(&str, usize)> = cfg.ranks.iter().map(|&r| ("lora", r)).collect();
    variants.extend(cfg.ranks.iter().map(|&r| ("rslora", r)));
    variants.push(("full", 0));
    let (mut runs, mut tuned_all) = (Vec::new(), Vec::new());
    for (method, rank) in variants {
        bar.set_message(format!("{method} r={rank}"));
        let mut m = base.deep_clone()?;
        let lr = if rank == 0 {
            cfg.lr_full
        } else {
            let lc = LoraConfig { rank, alpha: 2.0 * rank as f64, rslora: method == "rslora", targets: targets.clone() };
            m.add_lora(&lc, &mut Init::new(cfg.seed + rank as u64))?;
            if method == "rslora" {
                cfg.lr_rslora
            } else {
                cfg.lr_lora
            }
        };
        let trainable_params = m.trainable_params().iter().map(|(_, t)| t.elem_count()).sum();
        let (m, steps) = fine_tune(m, cfg, &d, lr, &bar)?;
        let tuned = block_matrices(&m)?;
        let a = analyze(&base_mats, &tuned, cfg.k)?;
        let per_matrix = a.matrices.iter().map(|x| (x.name.clone(), x.intruders_eps[&eps_key(0.5)])).collect();
        runs.push(RunResult {
            method: method.into(),
            rank,
            trainable_params,
            steps,
            task_acc: task_acc(&m, &d)?,
            pretrain_loss: corpus_loss(&m, &d)?,
            intruders_eps: a.totals.clone(),
            per_matrix,
        });
        tuned_all.push((tuned, a));
    }
    bar.finish_and_clear();
    // 3. scale down the intruders of the lowest-rank LoRA run (the paper's case)
    let pick = (0..runs.len()).filter(|&i| runs[i].method == "lora").min_by_key(|&i| runs[i].rank);
    let mut scale_down = Vec::new();
    let mut shown = None;
    if let Some(i) = pick {
        let (tuned, a) = tuned_all.swap_remove(i);
        for &lambda in &cfg.lambdas {
            let (mats, directions) = scale_intruders(&tuned, &a, cfg.eps, lambda);
            let m = with_matrices(&base, &mats)?;
            scale_down.push(ScaleDown { method: runs[i].method.clone(), rank: runs[i].rank, lambda, directions, task_acc: task_acc(&m, &d)?, pretrain_loss: corpus_loss(&m, &d)? });
        }
        shown = Some(a);
    }
    Ok((Experiment { base_pretrain_loss, base_task_acc, runs, scale_down }, shown))
}
