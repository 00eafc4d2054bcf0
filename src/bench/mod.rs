//! `kiln bench --suite NAME`: timed workloads run from the CLI (the criterion benches in the
//! top-level bench/ folder cover the engine's ops). Each workload checks its answer first, warms
//! up, then reports the median, min and max over repeats, the way
//! ../shared/baselines/torch_cpu_baselines.py times its reference (so the two compare as ratios
//! when run in one sitting).
//!
//! Suites: `baselines`, workloads a, b1-b3, c, d (src/bench/workloads.rs), e1, e2 and f of
//! ../shared/baselines/README.md:
//!   e1  thin SVD of a 1024 x 1024 f32 matrix (U, S and V^T)
//!   e2  Huber (delta 1e-3) scaling-law fit on 100 points from a grid of 108 L-BFGS starts
//!   f   logistic-regression probe, 4000 x 256, 10 classes, C = 1, L-BFGS (max 200 iterations)

#[cfg(feature = "cuda")]
pub mod choices;
pub mod cuda;
pub mod cli;
pub mod kernel_targets;
pub mod report;
pub mod row;
pub mod targets;
pub mod workloads;

use crate::linalg::{svd_f32, LogReg, LogRegOptions};
use crate::methods::scaling_laws::law::{fit_huber, grid_of, huber_objective, Law, Obs, HUBER_DELTA};
use crate::rng::{normal_vec, uniform_vec};
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    pub name: String,
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    pub repeats: usize,
    /// What the correctness check saw.
    pub check: String,
    /// The matching baseline median from a torch_cpu_baselines.py JSON, if one was given.
    pub baseline_s: Option<f64>,
}

/// Median/min/max seconds of `f` over `repeats` runs after `warmup` runs.
pub fn time<F: FnMut() -> Result<()>>(repeats: usize, warmup: usize, mut f: F) -> Result<(f64, f64, f64)> {
    for _ in 0..warmup {
        f()?;
    }
    let mut t = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    let n = t.len();
    let median = if n % 2 == 1 { t[n / 2] } else { 0.5 * (t[n / 2 - 1] + t[n / 2]) };
    Ok((median, t[0], t[n - 1]))
}

/// e2's data: Chinchilla's constants, N log-uniform in [1e7, 1e10], D in [1e9, 1e12], 1% log-noise.
pub fn e2_data(seed: u64) -> (Vec<Obs>, Law) {
    let truth = Law { a: 406.4f64.ln(), b: 410.7f64.ln(), e: 1.69f64.ln(), alpha: 0.34, beta: 0.28 };
    let un = uniform_vec(seed, 0, 100, 0.0, 1.0);
    let ud = uniform_vec(seed, 1, 100, 0.0, 1.0);
    let noise = normal_vec(seed, 2, 100, 0.0, 0.01);
    let lerp = |u: f32, lo: f64, hi: f64| (lo.ln() + u as f64 * (hi.ln() - lo.ln())).exp();
    let obs = (0..100)
        .map(|i| {
            let (n, d) = (lerp(un[i], 1e7, 1e10), lerp(ud[i], 1e9, 1e12));
            Obs { n, d, loss: truth.predict(n, d) * (noise[i] as f64).exp() }
        })
        .collect();
    (obs, truth)
}

/// e2's grid: a, b in {0, 10, 20}, e in {-1, 0.5, 1}, alpha, beta in {0.2, 0.5}: 108 starts.
pub fn e2_grid() -> Vec<[f64; 5]> {
    grid_of(&[0.0, 10.0, 20.0], &[0.0, 10.0, 20.0], &[-1.0, 0.5, 1.0], &[0.2, 0.5], &[0.2, 0.5])
}

fn bench_e2(repeats: usize) -> Result<Timing> {
    let (obs, truth) = e2_data(0);
    let grid = e2_grid();
    let fit = fit_huber(&obs, &grid, HUBER_DELTA)?;
    // Correctness: the best fit must score at least as well as the true parameters on noisy data.
    let logs: Vec<[f64; 3]> = obs.iter().map(|o| [o.n.ln(), o.d.ln(), o.loss.ln()]).collect();
    let at_truth = huber_objective(&truth.to_vec(), &logs, HUBER_DELTA, &mut [0.0; 5]);
    if !(fit.objective <= at_truth * (1.0 + 1e-9)) {
        return Err(Error::Msg(format!("bench e2: fit objective {} is worse than at the true parameters {at_truth}", fit.objective)));
    }
    let (median, min, max) = time(repeats, 1, || fit_huber(&obs, &grid, HUBER_DELTA).map(|_| ()))?;
    let l = fit.law;
    Ok(Timing {
        name: format!("e2 Huber scaling-law fit, 100 points, {} L-BFGS starts", grid.len()),
        median_s: median,
        min_s: min,
        max_s: max,
        repeats,
        check: format!(
            "E = {:.3}, A = {:.1}, B = {:.1}, alpha = {:.3}, beta = {:.3} (true 1.69, 406.4, 410.7, 0.34, 0.28); objective {:.3e} <= {:.3e} at the truth",
            l.e.exp(),
            l.a.exp(),
            l.b.exp(),
            l.alpha,
            l.beta,
            fit.objective,
            at_truth
        ),
        baseline_s: None,
    })
}

/// e1: the thin SVD of a standard-normal 1024 x 1024 f32 matrix; checked by the reconstruction
/// error |U S V^T - X| / |X| (f64 accumulation).
fn bench_e1(repeats: usize) -> Result<Timing> {
    let n = 1024;
    let x = normal_vec(0, 0, n * n, 0.0, 1.0);
    let f = svd_f32(&x, n, n)?;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for i in 0..n {
        for j in 0..n {
            let r: f64 = (0..n).map(|c| f.u[i * n + c] as f64 * f.s[c] as f64 * f.vt[c * n + j] as f64).sum();
            num += (r - x[i * n + j] as f64).powi(2);
            den += (x[i * n + j] as f64).powi(2);
        }
    }
    let rel = (num / den).sqrt();
    if !(rel < 1e-4) {
        return Err(Error::Msg(format!("bench e1: SVD reconstruction error {rel:.3e} is too large")));
    }
    let (median, min, max) = time(repeats, 1, || svd_f32(&x, n, n).map(|_| ()))?;
    Ok(Timing {
        name: "e1 thin SVD 1024x1024 f32 (U, S, V^T)".into(),
        median_s: median,
        min_s: min,
        max_s: max,
        repeats,
        check: format!("reconstruction |U S V^T - X| / |X| = {rel:.2e}"),
        baseline_s: None,
    })
}

/// f's data: X (5000, 256) standard normal, y = argmax(X W_true + noise), 10 classes.
pub fn f_data(seed: u64) -> (Vec<f64>, Vec<usize>) {
    let (n, f, k) = (5000, 256, 10);
    let x: Vec<f64> = normal_vec(seed, 0, n * f, 0.0, 1.0).into_iter().map(f64::from).collect();
    let w = normal_vec(seed, 1, f * k, 0.0, 1.0);
    let noise = normal_vec(seed, 2, n * k, 0.0, 1.0);
    let y = (0..n)
        .map(|i| {
            let score = |c: usize| (0..f).map(|j| x[i * f + j] * w[j * k + c] as f64).sum::<f64>() + noise[i * k + c] as f64;
            (0..k).map(|c| (c, score(c))).fold((0, f64::NEG_INFINITY), |b, s| if s.1 > b.1 { s } else { b }).0
        })
        .collect();
    (x, y)
}

fn bench_f(repeats: usize) -> Result<Timing> {
    let (x, y) = f_data(0);
    let (n_train, f, k) = (4000, 256, 10);
    let opts = LogRegOptions { max_iter: 200, ..Default::default() };
    let fit = || LogReg::fit(&x[..n_train * f], n_train, f, &y[..n_train], k, &opts);
    let model = fit()?;
    let acc = model.accuracy(&x[n_train * f..], 1000, &y[n_train..])?;
    if !(acc > 0.5) {
        return Err(Error::Msg(format!("bench f: held-out accuracy {acc} is too low for a separable-ish problem")));
    }
    let (median, min, max) = time(repeats, 1, || fit().map(|_| ()))?;
    Ok(Timing {
        name: "f logistic-regression probe 4000x256, 10 classes".into(),
        median_s: median,
        min_s: min,
        max_s: max,
        repeats,
        check: format!("held-out accuracy {acc:.3}, {} L-BFGS iterations, converged: {}", model.iterations, model.converged),
        baseline_s: None,
    })
}

/// Read the baseline medians, by workload id, from a torch_cpu_baselines.py `--json` file.
fn baseline_medians(path: &Path) -> Result<std::collections::BTreeMap<&'static str, f64>> {
    let err = |d: String| Error::File { path: path.display().to_string(), detail: d };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
    let keys: [(&str, &str, &str); 9] = [
        ("a", "a", ""),
        ("b1", "b", "forward_only"),
        ("b2", "b", "fwd_bwd_grads_A_B"),
        ("b3", "b", "fwd_bwd_grads_A_B_x"),
        ("c", "c", "chunked_C64"),
        ("d", "d", "sort_based_top_p_0.9"),
        ("e1", "e", "torch_svd_full"),
        ("e2", "e", "huber_lbfgs_grid_108_starts"),
        ("f", "f", "logreg_lbfgs_fit_4000x256_10cls"),
    ];
    let entry = |g: &str, k: &str| if k.is_empty() { v[g]["median_s"].as_f64() } else { v[g][k]["median_s"].as_f64() };
    Ok(keys.iter().filter_map(|(id, group, key)| entry(group, key).map(|m| (*id, m))).collect())
}

/// The workload ids of the `baselines` suite, in run order.
pub const WORKLOADS: [&str; 9] = ["a", "b1", "b2", "b3", "c", "d", "e1", "e2", "f"];

/// Run a suite; `only` picks workload ids (comma-separated, e.g. "a,d"; b1-b3 run together);
/// `baseline` is an optional torch_cpu_baselines.py JSON to put ratios next to ours.
pub fn run_suite(suite: &str, repeats: usize, only: Option<&str>, baseline: Option<&Path>) -> Result<Vec<Timing>> {
    if suite != "baselines" {
        return Err(Error::Msg(format!("bench: unknown suite \"{suite}\" (available: baselines)")));
    }
    let wanted: Vec<&str> = match only {
        Some(list) => list.split(',').map(str::trim).filter(|w| !w.is_empty()).collect(),
        None => WORKLOADS.to_vec(),
    };
    if let Some(bad) = wanted.iter().find(|w| !WORKLOADS.contains(w)) {
        return Err(Error::Msg(format!("bench: unknown workload \"{bad}\" (available: {})", WORKLOADS.join(", "))));
    }
    let base = match baseline {
        Some(p) => baseline_medians(p)?,
        None => Default::default(),
    };
    let on = |id: &str| wanted.contains(&id);
    let mut all = Vec::new();
    if on("a") {
        all.push(workloads::bench_a(repeats)?);
    }
    if on("b1") || on("b2") || on("b3") {
        all.extend(workloads::bench_b(repeats)?);
    }
    for (id, f) in [("c", workloads::bench_c as fn(usize) -> Result<Timing>), ("d", workloads::bench_d), ("e1", bench_e1), ("e2", bench_e2), ("f", bench_f)] {
        if on(id) {
            all.push(f(repeats)?);
        }
    }
    for t in &mut all {
        t.baseline_s = base.get(t.id()).copied();
    }
    Ok(all)
}

impl Timing {
    /// The workload id: the first word of the name ("a", "b1", ..).
    pub fn id(&self) -> &str {
        self.name.split_whitespace().next().unwrap_or("")
    }
}

/// `--json FILE`: one row per workload, {"workload", "median_s", "min_s", "max_s", "baseline_s"}.
pub fn timings_json(timings: &[Timing]) -> serde_json::Value {
    serde_json::Value::Array(
        timings
            .iter()
            .map(|t| serde_json::json!({"workload": t.id(), "name": t.name, "median_s": t.median_s, "min_s": t.min_s, "max_s": t.max_s, "repeats": t.repeats, "baseline_s": t.baseline_s, "check": t.check}))
            .collect(),
    )
}

/// One line per workload: median (min..max), the baseline and our speed-up if known, the check.
pub fn format_timings(timings: &[Timing]) -> String {
    let mut s = format!("threads: {} (rayon; set RAYON_NUM_THREADS to change)\n", rayon::current_num_threads());
    for t in timings {
        s += &format!("{}\n  median {:.4} s (min {:.4}, max {:.4}, {} repeats)", t.name, t.median_s, t.min_s, t.max_s, t.repeats);
        if let Some(b) = t.baseline_s {
            s += &format!("; baseline median {b:.4} s: kiln takes {:.3}x the baseline's time", t.median_s / b);
        }
        s += &format!("\n  check: {}\n", t.check);
    }
    s
}
