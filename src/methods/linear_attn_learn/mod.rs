//! Learning linear attention in polynomial time (`linear-attn-learn`): Yau et al., "Learning
//! Linear Attention in Polynomial Time".
//!
//! Claim reproduced: multi-head linear attention (MHLA) is linear in a fixed cubic feature map,
//! so ordinary least squares learns it exactly from polynomially many samples and an SVD gives
//! heads back; a certificate (the folded features' second moment is full rank) tells when every
//! empirical-risk minimiser computes the same function, i.e. generalises out of distribution.
//! Gradient-trained students (Adam, 1..8 heads, 1..2 layers) are reported next to OLS.
//!
//!   features  the feature map, folding, OLS, unfolding to W, head recovery, the certificate
//!   model     the trainable student (kiln tensors + autograd) and its Adam loop
//!   tasks     random-teacher data, associative memory, in-context automaton steps
//!   write     report.json, report.md and the PNGs
//!
//! Experiments: (1) random one-head teachers, OLS vs Adam students; (2) key-value associative
//! memory; (3) one step of a random DFA given in context; (4) the certificate against
//! out-of-distribution error on generic and constructed degenerate data.

pub mod cli;
pub mod features;
pub mod model;
pub mod tasks;
mod write;

use crate::report::{Report, RunDir};
use crate::{Error, Result};
use features::{certificate, mse_rel, ols, predict, psi, recover_heads, unfold, Certificate, Mhla};
use model::{Student, TrainConfig, TrainResult};
use serde::Serialize;
use std::path::Path;
use tasks::{Dataset, Tokens};

pub const NAME: &str = "linear-attn-learn";
/// The bar for OLS (test MSE / target variance).
pub const OLS_TARGET: f64 = 1e-8;
/// Singular values of W above this x the largest become recovered heads.
pub const HEAD_RTOL: f64 = 1e-8;

#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub seed: u64,
    /// token dimensions of the random teachers (one head each)
    pub dims: Vec<usize>,
    /// sequence length T
    pub t: usize,
    /// training-set sizes N (sequences)
    pub ns: Vec<usize>,
    pub n_test: usize,
    /// student head counts and depths
    pub heads: Vec<usize>,
    pub layers: Vec<usize>,
    /// student initialisations per (d, N, heads, layers) cell
    pub seeds: usize,
    pub train: TrainConfig,
    /// associative memory: keys, value dimension, training sequences
    pub memory: (usize, usize, usize),
    /// automaton: states, symbols, training sequences
    pub dfa: (usize, usize, usize),
    /// Adam steps for the memory and automaton students (one layer, `heads` head counts)
    pub task_steps: usize,
    /// certificate experiment: token dimension and training sequences
    pub cert: (usize, usize),
}

impl Default for Config {
    /// The paper's grid: d in {2, 4}, T = 100, N in {512, 1024, 2048}, 1..8 heads, 3 seeds.
    fn default() -> Self {
        Config {
            seed: 0,
            dims: vec![2, 4],
            t: 100,
            ns: vec![512, 1024, 2048],
            n_test: 512,
            heads: vec![1, 2, 4, 8],
            layers: vec![1, 2],
            seeds: 3,
            train: TrainConfig { steps: 3000, batch: 32, lr: 1e-2, eval_every: 50, threshold: 1e-2 },
            memory: (8, 4, 2048),
            dfa: (4, 2, 2048),
            task_steps: 3000,
            cert: (4, 1024),
        }
    }
}

impl Config {
    /// Seconds: d = 2, T = 20, one N, 1 and 2 heads, a few Adam steps.
    pub fn tiny() -> Self {
        Config {
            seed: 0,
            dims: vec![2],
            t: 20,
            ns: vec![64],
            n_test: 32,
            heads: vec![1, 2],
            layers: vec![1],
            seeds: 1,
            train: TrainConfig { steps: 20, batch: 8, lr: 1e-2, eval_every: 10, threshold: 1e-2 },
            memory: (3, 2, 96),
            dfa: (2, 2, 96),
            task_steps: 20,
            cert: (2, 64),
        }
    }
    /// The CPU reproduction: the paper's teacher grid with one student seed and fewer steps.
    pub fn small() -> Self {
        Config { seeds: 1, train: TrainConfig { steps: 800, batch: 32, lr: 1e-2, eval_every: 50, threshold: 1e-2 }, memory: (6, 3, 1024), dfa: (3, 2, 1024), task_steps: 800, cert: (4, 512), n_test: 256, ..Config::default() }
    }
}

/// One teacher-experiment row: OLS (heads = heads recovered from W) or an Adam student.
#[derive(Clone, Debug, Serialize)]
pub struct TeacherRow {
    pub d: usize,
    pub n: usize,
    /// "ols" or "adam"
    pub method: String,
    pub heads: usize,
    pub layers: usize,
    pub seed: u64,
    pub test_mse_rel: f64,
    /// Adam: first evaluated step below the threshold (null: never); OLS: 0 (closed form)
    pub steps: Option<usize>,
    /// OLS: the recovered heads' error on fresh inputs, relative to the teacher's output variance
    pub recovered_mse_rel: Option<f64>,
    /// OLS: |W - W_teacher (folded and unfolded)|_F / |W_teacher|_F
    pub w_rel_err: Option<f64>,
    pub diverged: bool,
    pub curve: Vec<(usize, f64)>,
}

/// Adam students of one head count, pooled over d, N, layers and seeds.
#[derive(Clone, Debug, Serialize)]
pub struct HeadSummary {
    pub heads: usize,
    pub layers: usize,
    pub runs: usize,
    pub converged: usize,
    pub median_steps: Option<f64>,
    pub median_test_mse_rel: f64,
}

/// Memory / automaton rows.
#[derive(Clone, Debug, Serialize)]
pub struct TaskRow {
    pub task: String,
    pub method: String,
    pub heads: usize,
    pub test_mse_rel: f64,
    pub accuracy: f64,
    pub steps: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CertRow {
    pub dataset: String,
    pub d: usize,
    pub n: usize,
    pub features: usize,
    pub rank: usize,
    pub full_rank: bool,
    pub lambda_min: f64,
    pub lambda_max: f64,
    pub in_dist_mse_rel: f64,
    pub ood_mse_rel: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Checks {
    pub ols_below_target: bool,
    pub recovered_below_target: bool,
    pub certificate_separates: bool,
    pub max_ols_mse_rel: f64,
    pub max_recovered_mse_rel: f64,
}

/// Everything the run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub heads_are: &'static str,
    pub teachers: Vec<TeacherRow>,
    pub adam_by_heads: Vec<HeadSummary>,
    pub tasks: Vec<TaskRow>,
    pub task_certificates: Vec<(String, Certificate)>,
    pub certificate: Vec<CertRow>,
    pub checks: Checks,
}


fn validate(cfg: &Config) -> Result<()> {
    let bad = |field: &str, why: &str| Err(Error::Msg(format!("linear-attn-learn config: `{field}` {why}")));
    if cfg.dims.is_empty() || cfg.dims.contains(&0) {
        return bad("dims", "must list token dimensions > 0");
    }
    if cfg.t == 0 || cfg.ns.is_empty() || cfg.ns.contains(&0) || cfg.n_test == 0 {
        return bad("t / ns / n_test", "must be > 0");
    }
    if cfg.heads.is_empty() || cfg.heads.contains(&0) || cfg.layers.is_empty() || cfg.layers.contains(&0) || cfg.seeds == 0 {
        return bad("heads / layers / seeds", "must be non-empty and > 0");
    }
    if cfg.train.batch == 0 || cfg.train.eval_every == 0 || !(cfg.train.lr > 0.0) {
        return bad("train", "needs batch, eval_every > 0 and lr > 0");
    }
    if cfg.memory.0 == 0 || cfg.memory.1 == 0 || cfg.memory.2 == 0 || cfg.dfa.0 < 2 || cfg.dfa.1 == 0 || cfg.dfa.2 == 0 || cfg.cert.0 < 2 || cfg.cert.1 == 0 {
        return bad("memory / dfa / cert", "need positive sizes (dfa at least 2 states, cert d >= 2)");
    }
    Ok(())
}

/// OLS on `train`, scored on `test`: (test error, fitted predictions on test, the fit's W).
fn ols_scored(train: &Dataset, test: &Dataset) -> Result<(f64, Vec<f64>, Vec<f64>)> {
    let fit = ols(train)?;
    let pred = predict(&psi(test), &fit.beta, test.d);
    Ok((mse_rel(&pred, &test.targets(), test.d), pred, unfold(&fit.beta, test.d)))
}

/// Experiment 1: random one-head teachers, OLS and Adam students.
fn teachers(cfg: &Config, bar: &indicatif::ProgressBar) -> Result<Vec<TeacherRow>> {
    let mut rows = Vec::new();
    for &d in &cfg.dims {
        let teacher = Mhla::random(d, 1, cfg.seed + 100 + d as u64);
        let test = tasks::teacher_data(&teacher, Tokens::Gaussian, cfg.n_test, cfg.t, cfg.seed + 200 + d as u64);
        let fresh = tasks::teacher_data(&teacher, Tokens::Gaussian, cfg.n_test, cfg.t, cfg.seed + 300 + d as u64);
        let w_true = unfold(&features::fold(&teacher.w(), d), d);
        for &n in &cfg.ns {
            let train = tasks::teacher_data(&teacher, Tokens::Gaussian, n, cfg.t, cfg.seed + 1000 * n as u64 + d as u64);
            bar.set_message(format!("d = {d}, N = {n}: OLS"));
            let (err, _, w) = ols_scored(&train, &test)?;
            let heads = recover_heads(&w, d, HEAD_RTOL)?;
            let recovered = mse_rel(&heads.apply(&fresh.z, fresh.n, fresh.t), &fresh.y, d);
            let w_err = w.iter().zip(&w_true).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() / w_true.iter().map(|v| v * v).sum::<f64>().sqrt();
            rows.push(TeacherRow { d, n, method: "ols".into(), heads: heads.heads.len(), layers: 1, seed: 0, test_mse_rel: err, steps: Some(0), recovered_mse_rel: Some(recovered), w_rel_err: Some(w_err), diverged: false, curve: vec![] });
            for &layers in &cfg.layers {
                for &h in &cfg.heads {
                    for s in 0..cfg.seeds as u64 {
                        bar.set_message(format!("d = {d}, N = {n}: Adam, {h} heads, {layers} layer(s), seed {s}"));
                        let seed = cfg.seed + 7919 * s + 31 * h as u64 + layers as u64;
                        let student = Student::new(d, h, layers, seed)?;
                        let (r, _) = model::train(&student, &train, &test, &cfg.train, seed, bar)?;
                        rows.push(adam_row(d, n, h, layers, s, r));
                    }
                }
            }
        }
    }
    Ok(rows)
}

fn adam_row(d: usize, n: usize, heads: usize, layers: usize, seed: u64, r: TrainResult) -> TeacherRow {
    TeacherRow { d, n, method: "adam".into(), heads, layers, seed, test_mse_rel: r.test_mse_rel, steps: r.steps, recovered_mse_rel: None, w_rel_err: None, diverged: r.diverged, curve: r.curve }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { 0.5 * (v[m - 1] + v[m]) })
}

fn summarise(rows: &[TeacherRow], cfg: &Config) -> Vec<HeadSummary> {
    let mut out = Vec::new();
    for &layers in &cfg.layers {
        for &h in &cfg.heads {
            let runs: Vec<&TeacherRow> = rows.iter().filter(|r| r.method == "adam" && r.heads == h && r.layers == layers).collect();
            out.push(HeadSummary {
                heads: h,
                layers,
                runs: runs.len(),
                converged: runs.iter().filter(|r| r.steps.is_some()).count(),
                median_steps: median(runs.iter().filter_map(|r| r.steps.map(|s| s as f64)).collect()),
                median_test_mse_rel: median(runs.iter().map(|r| if r.diverged { f64::INFINITY } else { r.test_mse_rel }).collect()).unwrap_or(f64::NAN),
            });
        }
    }
    out
}

/// A task's name and the certificate of its OLS fit.
type NamedCertificate = (String, Certificate);

/// Experiments 2 and 3: OLS and one-layer Adam students on memory and automaton data.
fn task_rows(cfg: &Config, bar: &indicatif::ProgressBar) -> Result<(Vec<TaskRow>, Vec<NamedCertificate>)> {
    let (keys, dv, n_mem) = cfg.memory;
    let (states, symbols, n_dfa) = cfg.dfa;
    let sets = [
        ("memory", tasks::memory(n_mem, keys, dv, cfg.seed + 40), tasks::memory(cfg.n_test, keys, dv, cfg.seed + 41)),
        ("dfa", tasks::dfa(n_dfa, states, symbols, cfg.seed + 50), tasks::dfa(cfg.n_test, states, symbols, cfg.seed + 51)),
    ];
    let acc = |task: &str, ds: &Dataset, pred: &[f64]| if task == "memory" { tasks::memory_accuracy(ds, keys, pred) } else { tasks::dfa_accuracy(ds, states, symbols, pred) };
    let (mut rows, mut certs) = (Vec::new(), Vec::new());
    let tcfg = TrainConfig { steps: cfg.task_steps, ..cfg.train.clone() };
    for (task, train, test) in &sets {
        bar.set_message(format!("{task}: OLS"));
        let (err, pred, _) = ols_scored(train, test)?;
        rows.push(TaskRow { task: task.to_string(), method: "ols".into(), heads: 0, test_mse_rel: err, accuracy: acc(task, test, &pred), steps: Some(0) });
        certs.push((task.to_string(), certificate(train)?));
        for &h in &cfg.heads {
            bar.set_message(format!("{task}: Adam, {h} heads"));
            let seed = cfg.seed + 500 + h as u64;
            let (r, pred) = model::train(&Student::new(train.d, h, 1, seed)?, train, test, &tcfg, seed, bar)?;
            rows.push(TaskRow { task: task.to_string(), method: "adam".into(), heads: h, test_mse_rel: r.test_mse_rel, accuracy: acc(task, test, &pred), steps: r.steps });
        }
    }
    Ok((rows, certs))
}

/// Experiment 4: the certificate on generic and degenerate training sets, against the error on
/// shifted (out-of-distribution) inputs of the OLS fit.
pub fn certificate_rows(cfg: &Config) -> Result<Vec<CertRow>> {
    let (d, n) = cfg.cert;
    let teacher = Mhla::random(d, 1, cfg.seed + 60);
    let ood = tasks::teacher_data(&teacher, Tokens::Shifted, cfg.n_test, cfg.t, cfg.seed + 61);
    let mut rows = Vec::new();
    for (i, kind) in [Tokens::Gaussian, Tokens::Subspace, Tokens::Collinear].into_iter().enumerate() {
        let train = tasks::teacher_data(&teacher, kind, n, cfg.t, cfg.seed + 62 + i as u64);
        let test = tasks::teacher_data(&teacher, kind, cfg.n_test, cfg.t, cfg.seed + 70 + i as u64);
        let c = certificate(&train)?;
        let (in_dist, _, _) = ols_scored(&train, &test)?;
        let (ood_err, _, _) = ols_scored(&train, &ood)?;
        rows.push(CertRow { dataset: kind.name().into(), d, n, features: c.features, rank: c.rank, full_rank: c.full_rank, lambda_min: c.lambda_min, lambda_max: c.lambda_max, in_dist_mse_rel: in_dist, ood_mse_rel: ood_err });
    }
    Ok(rows)
}

/// Run all four experiments.
pub fn reproduce(cfg: &Config) -> Result<Results> {
    validate(cfg)?;
    let cells = cfg.dims.len() * cfg.ns.len() * cfg.heads.len() * cfg.layers.len() * cfg.seeds;
    let bar = crate::report::progress((cells * cfg.train.steps + 2 * cfg.heads.len() * cfg.task_steps) as u64, "Adam steps");
    let teachers = teachers(cfg, &bar)?;
    let (tasks, task_certificates) = task_rows(cfg, &bar)?;
    bar.set_message("certificate");
    let certificate = certificate_rows(cfg)?;
    bar.finish_and_clear();
    let ols_rows: Vec<&TeacherRow> = teachers.iter().filter(|r| r.method == "ols").collect();
    let max_ols = ols_rows.iter().map(|r| r.test_mse_rel).fold(0.0, f64::max);
    let max_rec = ols_rows.iter().filter_map(|r| r.recovered_mse_rel).fold(0.0, f64::max);
    let generic_ok = certificate.iter().filter(|c| c.dataset == "gaussian").all(|c| c.full_rank && c.ood_mse_rel < OLS_TARGET);
    let degenerate_ok = certificate.iter().filter(|c| c.dataset != "gaussian").all(|c| !c.full_rank && c.ood_mse_rel > 1e-3);
    let checks = Checks {
        ols_below_target: max_ols < OLS_TARGET,
        recovered_below_target: max_rec < OLS_TARGET,
        certificate_separates: generic_ok && degenerate_ok,
        max_ols_mse_rel: max_ols,
        max_recovered_mse_rel: max_rec,
    };
    let adam_by_heads = summarise(&teachers, cfg);
    Ok(Results { config: cfg.clone(), heads_are: "summed", teachers, adam_by_heads, tasks, task_certificates, certificate, checks })
}

/// The `kiln linear-attn-learn` job: run the experiments and write the report into `out`.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = reproduce(cfg)?;
    let dir = RunDir::create(out)?;
    write::write_report(&dir, &results)?;
    let c = &results.checks;
    let passed = c.ols_below_target && c.recovered_below_target && c.certificate_separates;
    Ok(Report {
        method: NAME.to_string(),
        dir: dir.path().to_path_buf(),
        headline: format!(
            "OLS test MSE/var max {:.1e}, recovered heads {:.1e} (target < 1e-8); certificate {} generic from degenerate data",
            c.max_ols_mse_rel,
            c.max_recovered_mse_rel,
            if c.certificate_separates { "separates" } else { "does NOT separate" }
        ),
        passed: Some(passed),
    })
}
