//! Maximum-entropy IRL over a feature set, the proposer that grows the set, and the ALGAE loop.
//!
//! Fit: minimise  -(1/D) sum_d log P(path_d | theta) + (l2 / 2) |theta|^2  by L-BFGS, with
//! gradient  -(1/D) sum_d (phi(path_d) - `E_theta[phi]`) + l2 theta  (demo minus model feature
//! counts, the model's from soft value iteration and forward visitation in the demo's layout).
//! A demo is explained when theta's optimal path in its layout (ties broken by action order)
//! matches it in every grammar feature's count. Otherwise the proposer sees the contrast (the
//! demo's path and theta's) and names features to add, best first; the loop keeps the one that
//! raises the likelihood most, and ends when every demo is explained or no candidate pays its way.

use super::grid::{grammar, Feature, Layout};
use super::mdp::{rewards, Mdp};
use crate::linalg::{minimize, LbfgsOptions};
use crate::{Error, Result};
use serde::Serialize;

/// One demonstration: a layout and the path the demonstrator took in it.
#[derive(Clone, Debug)]
pub struct Demo {
    pub layout: Layout,
    pub mdp: Mdp,
    pub path: Vec<usize>,
}

impl Demo {
    pub fn new(layout: Layout, path: Vec<usize>) -> Demo {
        Demo { mdp: Mdp::new(&layout), layout, path }
    }
}

/// The fit's objective at `theta` and its gradient: the mean negative log-likelihood of the
/// demos' paths plus (l2 / 2) |theta|^2.
pub fn objective(demos: &[Demo], features: &[Feature], horizon: usize, l2: f64, theta: &[f64]) -> (f64, Vec<f64>) {
    let mats: Vec<Vec<f64>> = demos.iter().map(|d| d.layout.feature_matrix(features)).collect();
    objective_on(demos, &mats, horizon, l2, theta)
}

/// `objective` with each demo's feature matrix (cells, F) given: L-BFGS evaluates it many
/// times for one feature set, the matrices once.
fn objective_on(demos: &[Demo], mats: &[Vec<f64>], horizon: usize, l2: f64, theta: &[f64]) -> (f64, Vec<f64>) {
    let f = theta.len();
    let scale = 1.0 / demos.len().max(1) as f64;
    let mut grad: Vec<f64> = theta.iter().map(|t| l2 * t).collect();
    let mut nll = 0.5 * l2 * theta.iter().map(|t| t * t).sum::<f64>();
    for (d, m) in demos.iter().zip(mats) {
        let policy = d.mdp.soft_policy(&rewards(m, theta), horizon);
        nll -= scale * d.mdp.log_likelihood(&policy, &d.path);
        let (demo, model) = (counts(m, f, &d.path), d.mdp.visits(&policy));
        for (j, g) in grad.iter_mut().enumerate() {
            let expected: f64 = model.iter().enumerate().map(|(s, v)| v * m[s * f + j]).sum();
            *g -= scale * (demo[j] - expected);
        }
    }
    (nll, grad)
}

/// theta for `features` by maximum-entropy IRL on `demos`; also the final objective.
pub fn maxent(demos: &[Demo], features: &[Feature], horizon: usize, l2: f64) -> Result<(Vec<f64>, f64)> {
    if demos.is_empty() || features.is_empty() {
        return Err(Error::Msg(format!("algae: maxent needs demos and features (got {} and {})", demos.len(), features.len())));
    }
    let mats: Vec<Vec<f64>> = demos.iter().map(|d| d.layout.feature_matrix(features)).collect();
    let f = |theta: &[f64], grad: &mut [f64]| {
        let (v, g) = objective_on(demos, &mats, horizon, l2, theta);
        grad.copy_from_slice(&g);
        v
    };
    let opts = LbfgsOptions { max_iter: 200, gtol: 1e-6, ..LbfgsOptions::default() };
    let min = minimize(f, &vec![0.0; features.len()], &opts)?;
    Ok((min.x, min.f))
}

/// Feature counts of a path: sum over its cells of the rows of `m` (cells, F).
pub fn counts(m: &[f64], f: usize, path: &[usize]) -> Vec<f64> {
    let mut c = vec![0.0; f];
    path.iter().for_each(|&s| c.iter_mut().zip(&m[s * f..(s + 1) * f]).for_each(|(a, b)| *a += b));
    c
}

/// Where a demo and theta's optimal behaviour part, in one layout.
#[derive(Clone, Debug)]
pub struct Contrast<'a> {
    pub layout: &'a Layout,
    pub demo: &'a [usize],
    pub model: Vec<usize>,
}

/// Offers features that could explain a set of contrasts, most promising first (empty: none).
/// Two are built: `Enumerative` below, and the kiln language model of lm.rs, which reads the
/// same contrasts and scores the grammar's feature programs.
pub trait Proposer {
    fn candidates(&mut self, contrasts: &[Contrast], have: &[Feature]) -> Result<Vec<Feature>>;
}

/// Per grammar feature (grammar order): its count along the demos' paths minus along the
/// model's, summed over the contrasts.
pub fn differences(contrasts: &[Contrast]) -> Vec<f64> {
    grammar().into_iter().map(|feat| contrasts.iter().map(|c| path_count(c.layout, feat, c.demo) - path_count(c.layout, feat, &c.model)).sum::<f64>()).collect()
}

/// Enumerates the grammar: every feature not yet in use whose count differs between the demos'
/// paths and the model's, summed over the contrasts, largest difference first (ties: grammar order).
pub struct Enumerative;

impl Enumerative {
    /// The enumerative order from `differences` (grammar order) and the features in use.
    pub fn order(diffs: &[f64], have: &[Feature]) -> Vec<Feature> {
        let mut scored: Vec<(f64, Feature)> = grammar().into_iter().zip(diffs).filter(|(x, _)| !have.contains(x)).map(|(feat, d)| (d.abs(), feat)).filter(|(d, _)| *d > 1e-9).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().map(|(_, f)| f).collect()
    }
}

impl Proposer for Enumerative {
    fn candidates(&mut self, contrasts: &[Contrast], have: &[Feature]) -> Result<Vec<Feature>> {
        Ok(Enumerative::order(&differences(contrasts), have))
    }
}

fn path_count(layout: &Layout, feat: Feature, path: &[usize]) -> f64 {
    path.iter().map(|&s| feat.eval(layout, s)).sum()
}

/// One round of the loop: what the fit left unexplained and what was added.
#[derive(Clone, Debug, Serialize)]
pub struct Round {
    pub features: Vec<String>,
    pub unexplained: usize,
    /// the proposer's candidates (each cost one IRL fit), its first one, and the best one's
    /// gain in total demo log-likelihood
    pub candidates: usize,
    pub first: Option<String>,
    pub best_gain: Option<f64>,
    pub added: Option<String>,
}

/// The demos theta leaves unexplained, as contrasts: those whose path differs from theta's
/// optimal path (ties broken by action order) in the count of some grammar feature. A demo whose
/// every grammar count matches is optimal under theta too (theta weighs grammar features).
pub fn contrasts<'a>(demos: &'a [Demo], features: &[Feature], theta: &[f64], horizon: usize) -> Vec<Contrast<'a>> {
    let all = grammar();
    demos
        .iter()
        .filter_map(|d| {
            let model = d.mdp.optimal_path(&rewards(&d.layout.feature_matrix(features), theta), horizon);
            let m = d.layout.feature_matrix(&all);
            let differ = counts(&m, all.len(), &d.path).iter().zip(counts(&m, all.len(), &model)).any(|(a, b)| (a - b).abs() > 1e-9);
            differ.then_some(Contrast { layout: &d.layout, demo: &d.path, model })
        })
        .collect()
}

/// ALGAE: fit, contrast, ask the proposer, keep its candidate that raises the demos' total
/// log-likelihood most, refit; until every demo is explained, no candidate pays its way (a gain
/// below BIC's (1/2) ln(transitions observed)), or `max_features` are in use. Returns the
/// features, theta and rounds.
pub fn algae(demos: &[Demo], start: &[Feature], proposer: &mut dyn Proposer, horizon: usize, l2: f64, max_features: usize) -> Result<(Vec<Feature>, Vec<f64>, Vec<Round>)> {
    let mut features = start.to_vec();
    let mut rounds = Vec::new();
    let steps: usize = demos.iter().map(|d| d.path.len().saturating_sub(1)).sum();
    let penalty = 0.5 * (steps.max(2) as f64).ln();
    let d = demos.len() as f64;
    loop {
        let (theta, nll) = maxent(demos, &features, horizon, l2)?;
        let open = contrasts(demos, &features, &theta, horizon);
        let names = features.iter().map(|f| f.name()).collect();
        let cands = if open.is_empty() || features.len() >= max_features { vec![] } else { proposer.candidates(&open, &features)? };
        let mut best: Option<(f64, Feature)> = None;
        for &c in &cands {
            let mut with = features.clone();
            with.push(c);
            let gain = d * (nll - maxent(demos, &with, horizon, l2)?.1);
            if best.is_none_or(|(g, _)| gain > g) {
                best = Some((gain, c));
            }
        }
        let added = best.filter(|(g, _)| *g > penalty).map(|(_, f)| f);
        rounds.push(Round { features: names, unexplained: open.len(), candidates: cands.len(), first: cands.first().map(|f| f.name()), best_gain: best.map(|b| b.0), added: added.map(|f| f.name()) });
        match added {
            Some(f) => features.push(f),
            None => return Ok((features, theta, rounds)),
        }
    }
}
