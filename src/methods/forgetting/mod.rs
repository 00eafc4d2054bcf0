//! Random-label forgetting (`forgetting`): Zhang, Choshen & Andreas, "Unforgettable
//! Generalization in Language Models" (2024).
//!
//! Claims tested (METHODS.md §9): fine-tuning on a task's examples with uniformly random labels
//! makes the model near-random on those examples; whether that forgetting reaches held-out
//! examples of the task varies from task to task; it is weakly predicted by the model's initial
//! confidence and the variability of its representations (low both -> more generalisation); and
//! it is shallow: linear probes on the hidden states still solve the task afterwards.
//!
//! Here: one tiny GPT-2-style LM pretrained on six synthetic multiple-choice tasks (tasks.rs),
//! each task forgotten in turn from a copy of it. Reported: the task x task held-out accuracy
//! matrix, per-layer probe accuracies before and after, and the correlations.
//!
//!   tasks       the six tasks, their balanced disjoint splits, the fixed random labels
//!   experiment  readouts (predictions, confidence, hidden states), probes, the training phases
//!   write       the claims, report.json, report.md and the PNGs

pub mod cli;
pub mod experiment;
pub mod tasks;
pub mod write;

use crate::io::hf::VocabCut;
use crate::linalg::spearman;
use crate::methods::training::{start_model, FINETUNE_LR};
use crate::methods::Claim;
use crate::model::Transformer;
use crate::report::Report;
use crate::tensor::Device;
use crate::{Error, Result};
use experiment::{forget_data, labels, model_config, pretrain_data, probe_accuracies, read, train, variability, PhaseStats};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tasks::{generate, vocab_size, Sizes, TaskSplits, TASK_NAMES};

pub const NAME: &str = "forgetting";

pub use crate::methods::training::Phase;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    pub tasks: Vec<&'static str>,
    pub sizes: Sizes,
    /// d_model, blocks and heads of the GPT-2-style model
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    /// multi-task pretraining (true labels, warmup + cosine)
    pub pretrain: Phase,
    /// forgetting one task (random labels, constant rate; `steps` is the most it may take, see STOP_MARGIN)
    pub forget: Phase,
    /// inverse L2 strength of the probes (scikit-learn's C)
    pub probe_c: f64,
    /// `--model DIR`: pretraining fine-tunes this HF checkpoint (cut to the task words) instead
    /// of a fresh GPT-2-style model of the width, layers and heads above
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    pub seed: u64,
    #[serde(serialize_with = "crate::methods::device_name")]
    pub device: Device,
}

impl Default for Config {
    /// The largest synthetic setting (a GPU job): width 256, 4 layers, 20k pretraining
    /// examples per task, 512 to forget. (The paper forgets real benchmarks in 7B-parameter LMs.)
    fn default() -> Self {
        Config {
            tasks: TASK_NAMES.to_vec(),
            sizes: Sizes { pretrain: 20_000, forget: 512, heldout: 1000, probe_fit: 1000, probe_test: 1000 },
            width: 256,
            layers: 4,
            heads: 8,
            pretrain: Phase { steps: 8000, batch_size: 128, lr: 1e-3 },
            forget: Phase { steps: 2000, batch_size: 32, lr: 1e-4 },
            probe_c: 1.0,
            model: None,
            seed: 0,
            device: Device::Cpu,
        }
    }
}

impl Config {
    /// Seconds: every task, a width-16 model, a few steps (a smoke run for tests).
    pub fn tiny() -> Self {
        Config {
            sizes: Sizes { pretrain: 64, forget: 16, heldout: 32, probe_fit: 32, probe_test: 32 },
            width: 16,
            layers: 2,
            heads: 2,
            pretrain: Phase { steps: 6, batch_size: 16, lr: 1e-3 },
            forget: Phase { steps: 4, batch_size: 8, lr: 1e-3 },
            ..Config::default()
        }
    }

    /// The CPU reproduction (a few minutes on 2 cores).
    pub fn small() -> Self {
        Config {
            sizes: Sizes { pretrain: 4000, forget: 128, heldout: 400, probe_fit: 400, probe_test: 400 },
            width: 64,
            layers: 2,
            heads: 4,
            pretrain: Phase { steps: 4000, batch_size: 64, lr: 2e-3 },
            forget: Phase { steps: 1000, batch_size: 16, lr: 1e-4 },
            ..Config::default()
        }
    }

    /// Start from the HF checkpoint in `dir` (`--model DIR`): both phases fine-tune it, at the
    /// fine-tuning rate.
    pub fn from_checkpoint(mut self, dir: PathBuf) -> Self {
        self.model = Some(dir);
        (self.pretrain.lr, self.forget.lr) = (FINETUNE_LR, FINETUNE_LR);
        self
    }

    /// Keep only the comma-separated `list` of tasks ("all" keeps every one).
    pub fn select(mut self, list: &str) -> Result<Self> {
        if list == "all" {
            return Ok(self);
        }
        let mut keep = Vec::new();
        for name in list.split(',').map(str::trim) {
            let Some(&t) = TASK_NAMES.iter().find(|&&t| t == name) else {
                return Err(Error::Msg(format!("forgetting: unknown --tasks entry \"{name}\" (expected all or a list of {})", TASK_NAMES.join(", "))));
            };
            if !keep.contains(&t) {
                keep.push(t);
            }
        }
        if keep.len() < 2 {
            return Err(Error::Msg(format!("forgetting: --tasks \"{list}\" names {} task(s); forgetting one task is only measured against another, so give two or more", keep.len())));
        }
        self.tasks = keep;
        Ok(self)
    }

    fn validate(&self) -> Result<()> {
        if self.tasks.len() < 2 {
            return Err(Error::Msg("forgetting: needs two or more tasks".into()));
        }
        if self.width == 0 || self.heads == 0 || self.width % self.heads != 0 || self.layers == 0 {
            return Err(Error::Msg(format!("forgetting: width {} must be a positive multiple of heads {} and layers {} >= 1", self.width, self.heads, self.layers)));
        }
        for (name, p) in [("pretrain", &self.pretrain), ("forget", &self.forget)] {
            if p.steps == 0 || p.batch_size == 0 || !(p.lr > 0.0 && p.lr.is_finite()) {
                return Err(Error::Msg(format!("forgetting: the {name} phase needs steps, batch size and a learning rate > 0 (got {p:?})")));
            }
        }
        Ok(())
    }
}

/// One task as the pretrained model handles it.
#[derive(Clone, Debug, Serialize)]
pub struct Before {
    pub task: String,
    pub choices: usize,
    pub chance: f64,
    pub heldout_accuracy: f64,
    /// on the forgetting set, with its true labels
    pub forget_accuracy: f64,
    /// mean probability of the predicted answer on the forgetting set (over the task's labels)
    pub confidence: f64,
    /// spread of the last block's states on the forgetting set (experiment::variability)
    pub variability: f64,
    /// probe accuracy per block (held-out probe-test split)
    pub probe: Vec<f64>,
}

/// The copy of the model that forgot one task.
#[derive(Clone, Debug, Serialize)]
pub struct After {
    pub task: String,
    /// forgetting set: agreement with the random labels trained on, and with the true ones
    pub fit_random: f64,
    pub forget_accuracy: f64,
    /// share of forgetting-set items whose random label is the true one
    pub random_agreement: f64,
    /// held-out accuracy of every task (Config::tasks order)
    pub heldout_accuracy: Vec<f64>,
    /// this task's probe accuracy per block
    pub probe: Vec<f64>,
    /// share of the above-chance held-out accuracy that forgetting removed:
    /// (before - after) / (before - chance); None when the task was not learned (before < chance + 0.1)
    pub generalisation: Option<f64>,
    /// the forgotten task's accuracies while forgetting: at step 0, every steps / TRAJECTORY_POINTS
    /// steps (at least every step) and at the last
    pub trajectory: Vec<Point>,
    pub training: PhaseStats,
}

/// About how many readings one forgetting run takes after its start (if it runs to the end).
pub const TRAJECTORY_POINTS: usize = 50;

/// Forgetting a task stops at the first reading where its forgetting set's true-label accuracy
/// is within this of its floor (the paper's end point: near-random on the examples trained on),
/// so every task is compared at the same degree of training-set forgetting. The floor is chance,
/// or the share of items whose random label happens to be the true one if that is higher (a
/// model that learned the random labels exactly scores that).
pub const STOP_MARGIN: f64 = 0.05;

/// One reading during forgetting: true-label accuracy on the forgetting set and held out.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub step: usize,
    pub forget_accuracy: f64,
    pub heldout_accuracy: f64,
}

/// Spearman correlations across tasks (None with fewer than three learned tasks).
#[derive(Clone, Debug, Serialize)]
pub struct Correlations {
    pub tasks: usize,
    /// max - min of the learned tasks' initial confidence; below SATURATED the ranks are noise
    /// and the confidence correlation is left out
    pub confidence_spread: f64,
    pub confidence: Option<f64>,
    pub variability: Option<f64>,
}

/// Everything a run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub total_params: usize,
    pub pretraining: PhaseStats,
    pub before: Vec<Before>,
    pub after: Vec<After>,
    pub correlations: Correlations,
    pub claims: Vec<Claim>,
    /// with `--model DIR`: the checkpoint and how its vocabulary was cut
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<VocabCut>,
}

/// Read one task out: accuracies, confidence, variability, probes.
fn before(model: &Transformer, t: &TaskSplits, probe_c: f64) -> Result<Before> {
    let held = read(model, &t.heldout, t.k, false)?;
    let forget = read(model, &t.forget, t.k, true)?;
    Ok(Before {
        task: t.name.into(),
        choices: t.k,
        chance: 1.0 / t.k as f64,
        heldout_accuracy: held.accuracy(&labels(&t.heldout)),
        forget_accuracy: forget.accuracy(&labels(&t.forget)),
        confidence: forget.confidence.iter().sum::<f64>() / forget.confidence.len().max(1) as f64,
        variability: variability(&forget),
        probe: probes(model, t, probe_c)?,
    })
}

fn probes(model: &Transformer, t: &TaskSplits, probe_c: f64) -> Result<Vec<f64>> {
    let fit = read(model, &t.probe_fit, t.k, true)?;
    let test = read(model, &t.probe_test, t.k, true)?;
    probe_accuracies(&fit, &labels(&t.probe_fit), &test, &labels(&t.probe_test), t.k, probe_c)
}

/// Pretrain, read out, forget every task in turn, read out again.
pub fn measure(cfg: &Config) -> Result<Results> {
    cfg.validate()?;
    let tasks = generate(&cfg.tasks, cfg.sizes, cfg.seed)?;
    let (model, checkpoint) = start_model(cfg.model.as_deref(), &tasks::words(&cfg.tasks), model_config(cfg, vocab_size(tasks.len())))?;
    model.to_device(cfg.device)?;
    let total_params = model.param_count();
    let (base, pretraining) = train(model, &pretrain_data(&tasks)?, &cfg.pretrain, true, cfg.seed, "pretrain", &mut |_, _| Ok(false))?;
    let before: Vec<Before> = tasks.iter().map(|t| before(&base, t, cfg.probe_c)).collect::<Result<_>>()?;
    let line: Vec<String> = before.iter().map(|b| format!("{} {:.2}", b.task, b.heldout_accuracy)).collect();
    eprintln!("forgetting: pretrained ({:.0}s), held-out accuracy {}", pretraining.seconds, line.join(", "));
    let mut after = Vec::new();
    for (i, (t, b)) in tasks.iter().zip(&before).enumerate() {
        let (data, random) = forget_data(t, cfg.seed);
        // The floor: chance, or what a model that learned the random labels exactly would score.
        let agreement = t.forget.iter().zip(&random).filter(|(it, &y)| it.label == y).count() as f64 / t.forget.len() as f64;
        let floor = b.chance.max(agreement);
        let mut trajectory = Vec::new();
        let every = (cfg.forget.steps / TRAJECTORY_POINTS).max(1);
        let mut watch = |step: usize, m: &Transformer| -> Result<bool> {
            if step % every != 0 && step != cfg.forget.steps {
                return Ok(false);
            }
            let forget = read(m, &t.forget, t.k, false)?.accuracy(&labels(&t.forget));
            trajectory.push(Point { step, forget_accuracy: forget, heldout_accuracy: read(m, &t.heldout, t.k, false)?.accuracy(&labels(&t.heldout)) });
            Ok(step > 0 && forget <= floor + STOP_MARGIN)
        };
        let (m, training) = train(base.deep_clone()?, &data, &cfg.forget, false, cfg.seed ^ 0xf0, &format!("forget {}", t.name), &mut watch)?;
        let forget = read(&m, &t.forget, t.k, false)?;
        let heldout_accuracy = tasks.iter().map(|u| Ok(read(&m, &u.heldout, u.k, false)?.accuracy(&labels(&u.heldout)))).collect::<Result<Vec<f64>>>()?;
        let own = heldout_accuracy[i];
        let learned = b.heldout_accuracy >= b.chance + 0.1;
        let a = After {
            task: t.name.into(),
            fit_random: forget.accuracy(&random),
            forget_accuracy: forget.accuracy(&labels(&t.forget)),
            random_agreement: agreement,
            heldout_accuracy,
            probe: probes(&m, t, cfg.probe_c)?,
            generalisation: learned.then(|| (b.heldout_accuracy - own) / (b.heldout_accuracy - b.chance)),
            trajectory,
            training,
        };
        eprintln!("forgetting {}: forgetting set {:.2} -> {:.2} (random labels fit {:.2}), held-out {:.2} -> {:.2}", t.name, b.forget_accuracy, a.forget_accuracy, a.fit_random, b.heldout_accuracy, own);
        after.push(a);
    }
    let correlations = correlations(&before, &after);
    let mut r = Results { config: cfg.clone(), total_params, pretraining, before, after, correlations, claims: Vec::new(), checkpoint };
    r.claims = write::claims(&r);
    Ok(r)
}

/// Initial confidences closer together than this (e.g. all 0.999x) carry no ranking.
pub const SATURATED: f64 = 0.01;

/// Spearman's rho of generalisation with initial confidence and with variability, over learned tasks.
pub fn correlations(before: &[Before], after: &[After]) -> Correlations {
    let pts: Vec<(f64, f64, f64)> = before.iter().zip(after).filter_map(|(b, a)| a.generalisation.map(|g| (g, b.confidence, b.variability))).collect();
    let g: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let rho = |x: Vec<f64>| if pts.len() >= 3 { Some(spearman(&g, &x)).filter(|r| r.is_finite()) } else { None };
    let conf: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let confidence_spread = conf.iter().copied().fold(f64::NEG_INFINITY, f64::max) - conf.iter().copied().fold(f64::INFINITY, f64::min);
    Correlations {
        tasks: pts.len(),
        confidence_spread: confidence_spread.max(0.0),
        confidence: if confidence_spread >= SATURATED { rho(conf) } else { None },
        variability: rho(pts.iter().map(|p| p.2).collect()),
    }
}

/// The `kiln forgetting` job: measure, then write report.json, report.md and PNGs into `out`.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = measure(cfg)?;
    crate::methods::finish(NAME, out, &results.claims, write::headline(&results), |d| write::write_report(d, &results))
}
