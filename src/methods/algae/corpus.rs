//! The proposer LM's problems: synthetic contrasts, each with the feature programs that explain it.
//!
//! One episode, a pure function of (key, index):
//!   hidden reward  a step cost -U(0.05, 0.5), on(flag) +U(2, 6), and one or two more predicates,
//!                  on(k) or near(k) for k in lava, water, grass, sand, weight U(0.5, 4), a
//!                  penalty (negative) with probability PENALTY = 3/4, else an attraction
//!   demos          1..=(the config's most demos) optimal paths under it, in layouts from the
//!                  method's own generator (Layout::random) under `key`, a Philox key disjoint
//!                  from the evaluation's (the run's seed)
//!   loop state     the start set, each hidden predicate with probability 1/2, and with
//!                  probability 1/4 one more grammar feature; theta by max-ent IRL on the demos
//!   answers        the hidden predicates the state lacks whose counts differ across the
//!                  contrasts theta leaves (those a proposer could read from them)
//! An episode with no open contrast or no answer makes no problem. The LM trains on one example
//! per (problem, answer): the context and the answer's program.

use super::grid::{grammar, Feature, Kind, Layout, KINDS};
use super::irl::{contrasts, differences, maxent, Demo, Enumerative};
use super::lm::{encode, program, rank, CONTEXT};
use super::{demonstrate_under, Config};
use crate::model::Transformer;
use crate::rng::Draws;
use crate::train::{Example, Examples};
use crate::Result;
use rayon::prelude::*;
use serde::Serialize;

/// Philox keys (XOR the run's seed) of the training and held-out episodes.
pub const TRAIN_KEY: u64 = 0xa16a_e000_7a1a_0001;
pub const HELDOUT_KEY: u64 = 0xa16a_e000_7a1a_0002;

/// One proposal problem.
#[derive(Clone, Debug)]
pub struct Problem {
    /// the LM's context (CONTEXT tokens)
    pub context: Vec<u32>,
    pub have: Vec<Feature>,
    /// per grammar feature: demo minus model count, summed over the contrasts
    pub diffs: Vec<f64>,
    pub answers: Vec<Feature>,
}

/// How often an extra predicate of a hidden reward is a penalty (else an attraction).
pub const PENALTY: f64 = 0.75;

/// A random hidden reward of the family above.
pub fn hidden_reward(d: &mut Draws) -> Vec<(Feature, f64)> {
    let mut r = vec![(Feature::Always, -(0.05 + 0.45 * d.unit())), (Feature::On(Kind::Flag), 2.0 + 4.0 * d.unit())];
    let extra = d.range(1, 2);
    while r.len() < 2 + extra {
        let k = KINDS[1 + d.below(4)];
        let f = if d.below(2) == 0 { Feature::On(k) } else { Feature::Near(k) };
        let w = (0.5 + 3.5 * d.unit()) * if d.unit() < PENALTY { -1.0 } else { 1.0 };
        if !r.iter().any(|(g, _)| *g == f) {
            r.push((f, w));
        }
    }
    r
}

/// Episode `index` under `key`: its problem, or None.
pub fn problem(cfg: &Config, key: u64, index: u64) -> Result<Option<Problem>> {
    let mut d = Draws::new(key, index as u32);
    let hidden = hidden_reward(&mut d);
    let most = cfg.demo_counts.iter().copied().max().unwrap_or(1);
    let demos: Vec<Demo> = (0..d.range(1, most) as u64).map(|j| demonstrate_under(&hidden, cfg.horizon, Layout::random(cfg.width, cfg.height, cfg.density, key, index * most as u64 + j))).collect();
    let mut have = cfg.start.clone();
    for &(f, _) in &hidden {
        if d.below(2) == 0 && !have.contains(&f) {
            have.push(f);
        }
    }
    if d.below(4) == 0 {
        let f = grammar()[d.below(grammar().len())];
        if !have.contains(&f) {
            have.push(f);
        }
    }
    let (theta, _) = maxent(&demos, &have, cfg.horizon, cfg.l2)?;
    let open = contrasts(&demos, &have, &theta, cfg.horizon);
    if open.is_empty() {
        return Ok(None);
    }
    let diffs = differences(&open);
    let g = grammar();
    let answers: Vec<Feature> = hidden.iter().map(|h| h.0).filter(|f| !have.contains(f) && g.iter().position(|x| x == f).is_some_and(|i| diffs[i].abs() > 1e-9)).collect();
    if answers.is_empty() {
        return Ok(None);
    }
    Ok(Some(Problem { context: encode(&diffs, &have), have, diffs, answers }))
}

/// The problems of episodes 0..n under `key`, in episode order (drawn in parallel).
pub fn problems(cfg: &Config, key: u64, n: usize) -> Result<Vec<Problem>> {
    let all: Vec<Option<Problem>> = (0..n as u64).into_par_iter().map(|i| problem(cfg, key, i)).collect::<Result<_>>()?;
    Ok(all.into_iter().flatten().collect())
}

/// One training example per (problem, answer): ids (SEQ_LEN) with loss on the program's two tokens.
pub fn examples(problems: &[Problem]) -> Examples {
    let seq = |p: &Problem, a: Feature| -> Vec<u32> { p.context.iter().copied().chain(program(a)).collect() };
    Examples(problems.iter().flat_map(|p| p.answers.iter().map(move |&a| Example::next_token(&seq(p, a), CONTEXT))).collect())
}

/// How often a proposer's first candidate is an answer, on a set of problems.
#[derive(Clone, Debug, Serialize)]
pub struct Accuracy {
    pub problems: usize,
    /// the LM's best-scored unused feature
    pub lm_top1: f64,
    /// the enumerative proposer's first (the largest count difference)
    pub enumerative_top1: f64,
    /// a uniformly random unused feature: mean of answers / unused features
    pub chance: f64,
}

/// Top-1 accuracies of `model` and of the enumerative order on `problems`.
pub fn accuracy(model: &Transformer, problems: &[Problem]) -> Result<Accuracy> {
    let (mut lm, mut en, mut chance) = (0.0, 0.0, 0.0);
    for p in problems {
        let hit = |f: Option<Feature>| f.is_some_and(|f| p.answers.contains(&f)) as u8 as f64;
        lm += hit(rank(model, &p.diffs, &p.have)?.first().map(|x| x.0));
        en += hit(Enumerative::order(&p.diffs, &p.have).first().copied());
        chance += p.answers.len() as f64 / grammar().len().saturating_sub(p.have.len()).max(1) as f64;
    }
    let n = problems.len().max(1) as f64;
    Ok(Accuracy { problems: problems.len(), lm_top1: lm / n, enumerative_top1: en / n, chance: chance / n })
}
