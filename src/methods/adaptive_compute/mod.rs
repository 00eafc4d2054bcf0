//! Adaptive computation (`adaptive-compute`): Damani et al., "Learning How Hard to Think:
//! Input-Adaptive Allocation of LM Computation" (2024).
//!
//! Claims tested (METHODS.md §6): a probe on the model's hidden states predicts how likely one
//! sample is to solve a query; handing a sampling budget out greedily by predicted marginal gain
//! reaches uniform best-of-b's accuracy with less computation (paper: up to 50% less) or does
//! better at the same budget (up to 10%); and routing queries between a cheap and an expensive
//! decoder by predicted gain beats routing at random.
//!
//! Here: two tiny LMs (strong and weak) trained by kiln on addition of 1..D-digit numbers, an
//! exact verifier, many samples per query drawn with the batched sampler.
//!
//!   tasks     the addition queries, prompts, answers, verifier, training examples
//!   sample    batched sampling and success counts; the probe's features
//!   allocate  best-of-b estimates, greedy allocation, budgets, routing
//!   write     the claims, report.json, report.md and the PNGs

pub mod allocate;
pub mod cli;
pub mod sample;
pub mod tasks;
pub mod write;

use crate::io::hf::VocabCut;
use crate::methods::training::{start_model, FINETUNE_LR};
use crate::linalg::{spearman, standardise, standardiser, LogReg, LogRegOptions};
use crate::methods::Claim;
use crate::model::{Arch, Config as ModelConfig, Transformer};
use crate::report::Report;
use crate::tensor::Device;
use crate::train::Trainer;
use crate::{Error, Result};
use allocate::{accuracy, budget_to_reach, greedy_curve, greedy_order, routed_accuracy, uniform};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tasks::{queries, seq_len, training_set, Query, VOCAB};

pub const NAME: &str = "adaptive-compute";

/// One decoder: its GPT-2-style shape and its training budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decoder {
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// operands have 1..=max_digits digits (uniform)
    pub max_digits: usize,
    /// the decoder whose samples are allocated (and the expensive one when routing)
    pub strong: Decoder,
    /// the cheap decoder of the routing experiment
    pub weak: Decoder,
    pub train_examples: usize,
    /// queries the probes are fitted on, and queries everything is scored on
    pub probe_queries: usize,
    pub test_queries: usize,
    /// samples drawn per query; also the most one query may be given
    pub samples: usize,
    pub temperature: f32,
    /// uniform budgets compared (samples per query)
    pub budgets: Vec<usize>,
    /// fractions of queries routed to the strong decoder
    pub route_fractions: Vec<f64>,
    /// inverse L2 strength of the probes (scikit-learn's C)
    pub probe_c: f64,
    /// `--model DIR`: the strong decoder fine-tunes this HF checkpoint (cut to the addition
    /// words) instead of training the GPT-2-style shape above from scratch
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    pub seed: u64,
    #[serde(serialize_with = "crate::methods::device_name")]
    pub device: Device,
}

impl Default for Config {
    /// The largest synthetic setting (a GPU job): 6-digit addition, width 256 / 64 decoders.
    fn default() -> Self {
        Config {
            max_digits: 6,
            strong: Decoder { width: 256, layers: 4, heads: 8, steps: 6000, batch_size: 128, lr: 1e-3 },
            weak: Decoder { width: 64, layers: 2, heads: 4, steps: 2000, batch_size: 128, lr: 2e-3 },
            train_examples: 200_000,
            probe_queries: 2000,
            test_queries: 2000,
            samples: 64,
            temperature: 1.0,
            budgets: vec![1, 2, 4, 8, 16, 32],
            route_fractions: vec![0.1, 0.25, 0.5, 0.75],
            probe_c: 1.0,
            model: None,
            seed: 0,
            device: Device::Cpu,
        }
    }
}

impl Config {
    /// Seconds: 2-digit addition, width-16 decoders, a few steps (a smoke run for tests).
    pub fn tiny() -> Self {
        Config {
            max_digits: 2,
            strong: Decoder { width: 16, layers: 1, heads: 2, steps: 8, batch_size: 16, lr: 3e-3 },
            weak: Decoder { width: 8, layers: 1, heads: 2, steps: 4, batch_size: 16, lr: 3e-3 },
            train_examples: 256,
            probe_queries: 24,
            test_queries: 24,
            samples: 4,
            budgets: vec![1, 2],
            route_fractions: vec![0.25, 0.5],
            ..Config::default()
        }
    }

    /// The CPU reproduction (about a minute on 2 cores).
    pub fn small() -> Self {
        Config {
            max_digits: 4,
            strong: Decoder { width: 64, layers: 2, heads: 4, steps: 3000, batch_size: 64, lr: 2e-3 },
            weak: Decoder { width: 32, layers: 2, heads: 2, steps: 600, batch_size: 64, lr: 2e-3 },
            train_examples: 50_000,
            probe_queries: 600,
            test_queries: 600,
            samples: 32,
            budgets: vec![1, 2, 4, 8, 16],
            ..Config::default()
        }
    }

    /// Start the strong decoder from the HF checkpoint in `dir` (`--model DIR`), trained at the
    /// fine-tuning rate; the weak decoder stays the small model trained from scratch.
    pub fn from_checkpoint(mut self, dir: PathBuf) -> Self {
        self.model = Some(dir);
        self.strong.lr = FINETUNE_LR;
        self
    }

    fn validate(&self) -> Result<()> {
        for (name, d) in [("strong", &self.strong), ("weak", &self.weak)] {
            if d.width == 0 || d.heads == 0 || d.width % d.heads != 0 || d.layers == 0 || d.steps == 0 || d.batch_size == 0 || !(d.lr > 0.0 && d.lr.is_finite()) {
                return Err(Error::Msg(format!("adaptive-compute: the {name} decoder needs width a positive multiple of heads, layers, steps, batch size and lr > 0 (got {d:?})")));
            }
        }
        if self.samples == 0 || self.probe_queries == 0 || self.test_queries == 0 || self.train_examples == 0 {
            return Err(Error::Msg("adaptive-compute: samples, probe_queries, test_queries and train_examples must be >= 1".into()));
        }
        if let Some(b) = self.budgets.iter().find(|&&b| b == 0 || b > self.samples) {
            return Err(Error::Msg(format!("adaptive-compute: budget {b} samples per query must be in 1..={} (the samples drawn per query)", self.samples)));
        }
        if let Some(f) = self.route_fractions.iter().find(|f| !(**f > 0.0 && **f < 1.0)) {
            return Err(Error::Msg(format!("adaptive-compute: routed fraction {f} must be in (0, 1)")));
        }
        Ok(())
    }
}

/// How one decoder came out.
#[derive(Clone, Debug, Serialize)]
pub struct DecoderStats {
    pub params: usize,
    pub final_loss: f64,
    pub seconds: f64,
    /// mean 1-sample success on the test queries, per operand length 1..=max_digits
    pub success_by_digits: Vec<f64>,
    pub success: f64,
}

/// One uniform budget against the greedy allocations.
#[derive(Clone, Debug, Serialize)]
pub struct BudgetRow {
    /// samples per query
    pub budget: usize,
    pub uniform: f64,
    pub adaptive: f64,
    pub oracle: f64,
    /// samples per query the probe's allocation needs to match `uniform` (None: never within the cap)
    pub adaptive_budget_to_match: Option<f64>,
    /// 1 - adaptive_budget_to_match / budget
    pub saving: Option<f64>,
    /// mean samples the probe's allocation gives a query of each operand length, at this budget
    pub adaptive_by_digits: Vec<f64>,
}

/// One routed fraction.
#[derive(Clone, Debug, Serialize)]
pub struct RouteRow {
    pub fraction: f64,
    pub random: f64,
    pub predicted: f64,
    pub oracle: f64,
}

/// How well a probe predicts the empirical success rate on the test queries.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeStats {
    pub spearman: f64,
    /// mean squared error against the empirical rate, and that of predicting the probe set's mean
    pub brier: f64,
    pub brier_constant: f64,
}

/// Everything a run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub strong: DecoderStats,
    pub weak: DecoderStats,
    pub probe: ProbeStats,
    pub budgets: Vec<BudgetRow>,
    pub routing: Vec<RouteRow>,
    /// accuracy vs samples per query, every 1/8 sample: greedy with the probe, greedy with the truth
    pub adaptive_curve: Vec<(f64, f64)>,
    pub oracle_curve: Vec<(f64, f64)>,
    pub claims: Vec<Claim>,
    /// with `--model DIR`: the checkpoint the strong decoder started from, and its cut
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<VocabCut>,
}

/// Train decoder `d` from scratch, or from the checkpoint `from` (cut to the addition words).
fn train_decoder(d: &Decoder, cfg: &Config, from: Option<&Path>, label: &str) -> Result<(Transformer, f64, f64, Option<VocabCut>)> {
    let start = std::time::Instant::now();
    let mut mc = ModelConfig::tiny(Arch::Gpt2, VOCAB);
    (mc.d_model, mc.n_layers, mc.n_heads, mc.n_kv_heads) = (d.width, d.layers, d.heads, None);
    (mc.max_seq_len, mc.tie_embeddings, mc.seed) = (seq_len(cfg.max_digits) + 1, false, cfg.seed);
    let (model, cut) = start_model(from, &tasks::words(), mc)?;
    model.to_device(cfg.device)?;
    let tc = crate::methods::small_model_recipe(d.steps, d.batch_size, d.lr, true, cfg.seed);
    let data = training_set(cfg.max_digits, cfg.train_examples, cfg.seed)?;
    let mut trainer = Trainer::new(model, tc, data.0.len())?;
    let (_, loss) = trainer.run(&data, d.steps, label, &mut |_, _| Ok(false))?;
    Ok((trainer.model.clone(), loss, start.elapsed().as_secs_f64(), cut))
}

/// A logistic probe of P(one sample is correct) from features (N, C): each query contributes its
/// `s` samples as rows labelled 1 (correct) or 0, i.e. binary cross-entropy on its empirical rate.
/// Returns the predicted rates of `test` (M, C).
pub fn fit_probe(fit: &[f64], counts: &[usize], s: usize, test: &[f64], c: usize, probe_c: f64) -> Result<Vec<f64>> {
    let (mean, scale) = standardiser(fit, c);
    let fit = standardise(fit, &mean, &scale);
    let (mut x, mut y) = (Vec::with_capacity(fit.len() * s), Vec::with_capacity(counts.len() * s));
    for (row, &k) in fit.chunks(c).zip(counts) {
        for j in 0..s {
            x.extend_from_slice(row);
            y.push((j < k) as usize);
        }
    }
    let probe = LogReg::fit(&x, y.len(), c, &y, 2, &LogRegOptions { c: probe_c, max_iter: 300, ..LogRegOptions::default() })?;
    let m = test.len() / c;
    let z = probe.logits(&standardise(test, &mean, &scale), m)?; // (M, 2)
    Ok(z.chunks(2).map(|l| 1.0 / (1.0 + (l[0] - l[1]).exp())).collect())
}

fn decoder_stats(model: &Transformer, loss: f64, seconds: f64, test: &[Query], counts: &[usize], cfg: &Config) -> DecoderStats {
    let by = (1..=cfg.max_digits)
        .map(|n| {
            let v: Vec<f64> = test.iter().zip(counts).filter(|(q, _)| q.n == n).map(|(_, &c)| c as f64 / cfg.samples as f64).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        })
        .collect();
    let success = counts.iter().sum::<usize>() as f64 / (counts.len() * cfg.samples) as f64;
    DecoderStats { params: model.param_count(), final_loss: loss, seconds, success_by_digits: by, success }
}

/// Train both decoders, sample, fit the probes, allocate and route.
pub fn measure(cfg: &Config) -> Result<Results> {
    cfg.validate()?;
    let (d, s) = (cfg.max_digits, cfg.samples);
    let probe_q = queries(d, cfg.probe_queries, cfg.seed, 1)?;
    let test_q = queries(d, cfg.test_queries, cfg.seed, 2)?;
    let (strong, strong_loss, strong_secs, checkpoint) = train_decoder(&cfg.strong, cfg, cfg.model.as_deref(), "train strong")?;
    let (weak, weak_loss, weak_secs, _) = train_decoder(&cfg.weak, cfg, None, "train weak")?;
    let count = |m: &Transformer, q: &[Query], tag: &str| sample::success_counts(m, q, d, s, cfg.temperature, cfg.seed ^ 0x5a, tag);
    let (strong_fit, strong_test) = (count(&strong, &probe_q, "sample strong (probe set)")?, count(&strong, &test_q, "sample strong (test set)")?);
    let (weak_fit, weak_test) = (count(&weak, &probe_q, "sample weak (probe set)")?, count(&weak, &test_q, "sample weak (test set)")?);
    let rate = |c: &[usize]| c.iter().map(|&k| k as f64 / s as f64).collect::<Vec<f64>>();

    // Allocation: the strong decoder's own features predict its success.
    let (fs, ft, cs) = (sample::features(&strong, &probe_q, d)?, sample::features(&strong, &test_q, d)?, strong.cfg.d_model);
    let p_hat = fit_probe(&fs, &strong_fit, s, &ft, cs, cfg.probe_c)?;
    let truth = rate(&strong_test);
    let fit_mean = strong_fit.iter().sum::<usize>() as f64 / (strong_fit.len() * s) as f64;
    let mse = |p: &dyn Fn(usize) -> f64| truth.iter().enumerate().map(|(i, t)| (p(i) - t).powi(2)).sum::<f64>() / truth.len() as f64;
    let probe = ProbeStats { spearman: spearman(&p_hat, &truth), brier: mse(&|i| p_hat[i]), brier_constant: mse(&|_| fit_mean) };
    let n = test_q.len();
    let order = greedy_order(&p_hat, s);
    let curve = greedy_curve(&order, &strong_test, s);
    let oracle = greedy_curve(&greedy_order(&truth, s), &strong_test, s);
    let budgets = cfg
        .budgets
        .iter()
        .map(|&b| {
            let uni = accuracy(&strong_test, s, &uniform(n, b * n));
            // Nothing to match when uniform solves nothing (the empty allocation already "reaches" 0).
            let need = if uni > 0.0 { budget_to_reach(&curve, uni).map(|total| total as f64 / n as f64) } else { None };
            let mut given = vec![0usize; n];
            order.iter().take(b * n).for_each(|&i| given[i] += 1);
            let adaptive_by_digits = (1..=d)
                .map(|k| {
                    let v: Vec<usize> = test_q.iter().zip(&given).filter(|(q, _)| q.n == k).map(|(_, &g)| g).collect();
                    v.iter().sum::<usize>() as f64 / v.len().max(1) as f64
                })
                .collect();
            BudgetRow { budget: b, uniform: uni, adaptive: curve[b * n], oracle: oracle[b * n], adaptive_budget_to_match: need, saving: need.map(|x| 1.0 - x / b as f64), adaptive_by_digits }
        })
        .collect();

    // Routing: the weak decoder's features (what a router has before paying for the strong one)
    // predict both decoders' 1-sample success; route the largest predicted gains.
    let (fw, tw, cw) = (sample::features(&weak, &probe_q, d)?, sample::features(&weak, &test_q, d)?, weak.cfg.d_model);
    let p_weak = fit_probe(&fw, &weak_fit, s, &tw, cw, cfg.probe_c)?;
    let p_strong = fit_probe(&fw, &strong_fit, s, &tw, cw, cfg.probe_c)?;
    let gain: Vec<f64> = p_strong.iter().zip(&p_weak).map(|(a, b)| a - b).collect();
    let (w, st) = (rate(&weak_test), &truth[..]);
    let true_gain: Vec<f64> = st.iter().zip(&w).map(|(a, b)| a - b).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let routing = cfg
        .route_fractions
        .iter()
        .map(|&f| {
            let k = (f * n as f64).round() as usize;
            let frac = k as f64 / n as f64;
            RouteRow { fraction: frac, random: (1.0 - frac) * mean(&w) + frac * mean(st), predicted: routed_accuracy(&gain, &w, st, k), oracle: routed_accuracy(&true_gain, &w, st, k) }
        })
        .collect();

    let every = (n / 8).max(1);
    let pts = |c: &[f64]| c.iter().enumerate().step_by(every).map(|(b, &a)| (b as f64 / n as f64, a)).collect::<Vec<_>>();
    let mut r = Results {
        config: cfg.clone(),
        strong: decoder_stats(&strong, strong_loss, strong_secs, &test_q, &strong_test, cfg),
        weak: decoder_stats(&weak, weak_loss, weak_secs, &test_q, &weak_test, cfg),
        probe,
        budgets,
        routing,
        adaptive_curve: pts(&curve),
        oracle_curve: pts(&oracle),
        claims: Vec::new(),
        checkpoint,
    };
    r.claims = write::claims(&r);
    Ok(r)
}

/// The `kiln adaptive-compute` job: measure, then write report.json, report.md and PNGs into `out`.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = measure(cfg)?;
    crate::methods::finish(NAME, out, &results.claims, write::headline(&results), |d| write::write_report(d, &results))
}
