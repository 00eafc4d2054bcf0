//! ALGAE (`algae`): Peng et al., "Adaptive Language-Guided Abstraction from Contrastive
//! Explanations" (2024).
//!
//! Claim tested (METHODS.md §8): growing the reward's feature set from contrasts between the
//! demonstrations and the behaviour optimal under the current reward, and fitting the weights by
//! maximum-entropy IRL, recovers a reward that transfers to new layouts from 1-3 demonstrations
//! (held-out regret near 0), where fitting every feature at once overfits and a fixed small set
//! underfits.
//!
//! Here: 7 x 7 gridworlds with lava, water, grass, sand and a flag; a hidden reward over a few
//! predicates of the 11-feature grammar; two proposers behind one `Proposer` trait: the
//! enumerative one, and (`proposer: lm`) a tiny kiln LM trained from scratch (or fine-tuned from
//! `--model DIR`) on synthetic contrasts to write the missing feature's program, run side by side.
//!
//!   grid    layouts, object kinds, the feature grammar
//!   mdp     the finite-horizon MDP of a layout: soft and hard value iteration, visitation
//!   irl     maximum-entropy IRL, contrasts, the enumerative proposer, the ALGAE loop
//!   lm      the language-model proposer: contrast and program tokens, scoring, training
//!   corpus  its synthetic problems (random hidden rewards and layouts, disjoint seeds)
//!   write   the claims, report.json, report.md and the PNG

pub mod cli;
pub mod corpus;
pub mod grid;
pub mod irl;
pub mod lm;
pub mod mdp;
pub mod write;

use crate::methods::training::{Phase, FINETUNE_LR};
use crate::methods::Claim;
use crate::report::Report;
use crate::tensor::Device;
use crate::{Error, Result};
use grid::{grammar, Density, Feature, Kind, Layout};
use irl::{algae, maxent, Demo, Enumerative, Round};
use lm::{LmConfig, LmProposer, LmReport};
use mdp::{path_return, rewards, Mdp};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub const NAME: &str = "algae";

/// ALGAE with the language-model proposer, as its fits and summaries name it.
pub const ALGAE_LM: &str = "algae-lm";

/// Which proposers' ALGAE runs: the enumerative one alone, or the LM's beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposerKind {
    Enumerative,
    Lm,
}

impl std::str::FromStr for ProposerKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "enumerative" => Ok(ProposerKind::Enumerative),
            "lm" => Ok(ProposerKind::Lm),
            other => Err(format!("unknown proposer \"{other}\" (expected enumerative or lm)")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    pub width: usize,
    pub height: usize,
    /// steps per episode
    pub horizon: usize,
    pub density: Density,
    /// the demonstrator's hidden reward: weights on grammar features
    pub true_reward: Vec<(Feature, f64)>,
    /// the fixed-features baseline's set
    pub fixed: Vec<Feature>,
    /// ALGAE's starting set
    pub start: Vec<Feature>,
    pub demo_counts: Vec<usize>,
    /// independent draws of demo layouts per demo count
    pub trials: usize,
    /// held-out layouts every learned reward is scored on
    pub heldout: usize,
    /// L2 strength of the IRL fit
    pub l2: f64,
    /// `lm`: ALGAE also runs with the language-model proposer, compared with the enumerative one
    pub proposer: ProposerKind,
    pub lm: LmConfig,
    /// `--model DIR`: the proposer LM fine-tunes this HF checkpoint (cut to its words)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    pub seed: u64,
    /// where the proposer LM trains and scores
    #[serde(serialize_with = "crate::methods::device_name")]
    pub device: Device,
}

fn density() -> Density {
    Density { lava: 0.15, water: 0.12, grass: 0.15, sand: 0.15 }
}

impl Default for Config {
    /// The paper-sized setting: 9 x 9 grids, 20 trials, 100 held-out layouts (still a CPU job).
    fn default() -> Self {
        Config {
            width: 9,
            height: 9,
            horizon: 20,
            density: density(),
            true_reward: vec![(Feature::Always, -0.1), (Feature::On(Kind::Flag), 5.0), (Feature::On(Kind::Lava), -3.0), (Feature::On(Kind::Water), -1.0)],
            fixed: vec![Feature::Always, Feature::On(Kind::Flag)],
            start: vec![Feature::Always],
            demo_counts: vec![1, 2, 3],
            trials: 20,
            heldout: 100,
            l2: 0.01,
            proposer: ProposerKind::Lm,
            lm: LmConfig { width: 64, layers: 2, heads: 4, episodes: 8000, heldout: 1000, train: Phase { steps: 3000, batch_size: 64, lr: 2e-3 }, proposals: 3 },
            model: None,
            seed: 0,
            device: Device::Cpu,
        }
    }
}

impl Config {
    /// Seconds: 5 x 5 grids, two trials, a few held-out layouts (a smoke run for tests).
    pub fn tiny() -> Self {
        let lm = LmConfig { width: 16, layers: 1, heads: 2, episodes: 200, heldout: 100, train: Phase { steps: 40, batch_size: 16, lr: 3e-3 }, proposals: 3 };
        Config { width: 5, height: 5, horizon: 10, demo_counts: vec![1, 2], trials: 2, heldout: 4, lm, ..Config::default() }
    }

    /// The CPU reproduction: 7 x 7 grids, 30 trials, 60 held-out layouts; the proposer LM
    /// width 32, trained 1500 steps on 3000 episodes (about a minute on 2 cores).
    pub fn small() -> Self {
        let lm = LmConfig { width: 32, layers: 2, heads: 4, episodes: 3000, heldout: 600, train: Phase { steps: 1500, batch_size: 32, lr: 3e-3 }, proposals: 3 };
        Config { width: 7, height: 7, horizon: 16, trials: 30, heldout: 60, lm, ..Config::default() }
    }

    /// `--model DIR`: the LM proposer, fine-tuned from the HF checkpoint in `dir` at FINETUNE_LR.
    pub fn from_checkpoint(mut self, dir: PathBuf) -> Self {
        (self.model, self.proposer, self.lm.train.lr) = (Some(dir), ProposerKind::Lm, FINETUNE_LR);
        self
    }

    /// The methods this config compares, in report order.
    pub fn methods(&self) -> Vec<&'static str> {
        let lm = (self.proposer == ProposerKind::Lm).then_some(ALGAE_LM);
        ["algae"].into_iter().chain(lm).chain(["all-features", "fixed-features"]).collect()
    }

    fn validate(&self) -> Result<()> {
        if self.width < 2 || self.height < 2 || self.horizon == 0 || self.trials == 0 || self.heldout == 0 {
            return Err(Error::Msg(format!("algae: a {}x{} grid, horizon {}, {} trials and {} held-out layouts: every one must be >= 1 (the grid >= 2)", self.width, self.height, self.horizon, self.trials, self.heldout)));
        }
        if self.demo_counts.is_empty() || self.demo_counts.contains(&0) {
            return Err(Error::Msg(format!("algae: demo counts {:?} must be >= 1 and not empty", self.demo_counts)));
        }
        if self.start.is_empty() || self.fixed.is_empty() || !(self.l2 > 0.0) {
            return Err(Error::Msg("algae: the starting and fixed feature sets must not be empty, and l2 must be > 0".into()));
        }
        if self.proposer == ProposerKind::Lm {
            self.lm.validate()?;
        } else if let Some(dir) = &self.model {
            return Err(Error::Msg(format!("algae: --model {} trains the LM proposer, but the proposer is enumerative (use --proposer lm)", dir.display())));
        }
        Ok(())
    }

    fn true_rewards(&self, layout: &Layout) -> Vec<f64> {
        reward_in(&self.true_reward, layout)
    }
}

/// Rewards per cell of `layout` under weights on grammar features.
pub fn reward_in(reward: &[(Feature, f64)], layout: &Layout) -> Vec<f64> {
    let (feats, w): (Vec<Feature>, Vec<f64>) = reward.iter().copied().unzip();
    rewards(&layout.feature_matrix(&feats), &w)
}

/// One learned reward on the held-out layouts.
#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    pub method: String,
    pub demos: usize,
    pub trial: usize,
    pub features: Vec<String>,
    pub theta: Vec<f64>,
    /// mean over held-out layouts of (V* - V_learned) / (V* - V_random), true reward
    pub regret: f64,
    /// ALGAE only: the loop's rounds
    pub rounds: Vec<Round>,
}

/// Mean and spread of one (method, demo count) over the trials.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub method: String,
    pub demos: usize,
    pub mean_regret: f64,
    pub sd_regret: f64,
    pub mean_features: f64,
}

/// Everything a run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub fits: Vec<Fit>,
    pub summary: Vec<Summary>,
    /// an example demo layout and the held-out layouts' mean optimal return
    pub example_layout: String,
    /// with `proposer: lm`: the proposer LM's training and held-out accuracy
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lm: Option<LmReport>,
    pub claims: Vec<Claim>,
}

/// Normalised regret of rewards `theta` over `features` on one layout under the true reward.
pub fn regret(cfg: &Config, layout: &Layout, features: &[Feature], theta: &[f64]) -> f64 {
    let mdp = Mdp::new(layout);
    let truth = cfg.true_rewards(layout);
    let best = path_return(&truth, &mdp.optimal_path(&truth, cfg.horizon));
    let learned = path_return(&truth, &mdp.optimal_path(&rewards(&layout.feature_matrix(features), theta), cfg.horizon));
    let span = best - mdp.random_return(&truth, cfg.horizon);
    if span > 1e-9 {
        (best - learned) / span
    } else {
        0.0
    }
}

/// The demonstrator: the optimal path under the true reward in `layout`.
pub fn demonstrate(cfg: &Config, layout: Layout) -> Demo {
    demonstrate_under(&cfg.true_reward, cfg.horizon, layout)
}

/// The optimal path under `reward` in `layout`, as a demo.
pub fn demonstrate_under(reward: &[(Feature, f64)], horizon: usize, layout: Layout) -> Demo {
    let path = Mdp::new(&layout).optimal_path(&reward_in(reward, &layout), horizon);
    Demo::new(layout, path)
}

/// Every method, trial and demo count, scored on the held-out layouts.
pub fn measure(cfg: &Config) -> Result<Results> {
    cfg.validate()?;
    let layout = |index: u64| Layout::random(cfg.width, cfg.height, cfg.density, cfg.seed, index);
    let heldout: Vec<Layout> = (0..cfg.heldout as u64).map(|i| layout(1_000_000 + i)).collect();
    let score = |features: &[Feature], theta: &[f64]| heldout.iter().map(|l| regret(cfg, l, features, theta)).sum::<f64>() / heldout.len() as f64;
    let max_demos = cfg.demo_counts.iter().copied().max().unwrap_or(1);
    let trained = if cfg.proposer == ProposerKind::Lm { Some(lm::train_proposer(cfg)?) } else { None };
    let mut fits = Vec::new();
    let bar = crate::report::progress((cfg.trials * cfg.demo_counts.len()) as u64, "algae");
    for trial in 0..cfg.trials {
        // Nested: the first n of a trial's demos are its n-demo set.
        let demos: Vec<Demo> = (0..max_demos).map(|j| demonstrate(cfg, layout((trial * 1000 + j) as u64))).collect();
        for &n in &cfg.demo_counts {
            let d = &demos[..n];
            let names = |f: &[Feature]| f.iter().map(|x| x.name()).collect::<Vec<_>>();
            let (features, theta, rounds) = algae(d, &cfg.start, &mut Enumerative, cfg.horizon, cfg.l2, grammar().len())?;
            fits.push(Fit { method: "algae".into(), demos: n, trial, regret: score(&features, &theta), features: names(&features), theta, rounds });
            if let Some(t) = &trained {
                let mut proposer = LmProposer { model: &t.model, proposals: cfg.lm.proposals };
                let (features, theta, rounds) = algae(d, &cfg.start, &mut proposer, cfg.horizon, cfg.l2, grammar().len())?;
                fits.push(Fit { method: ALGAE_LM.into(), demos: n, trial, regret: score(&features, &theta), features: names(&features), theta, rounds });
            }
            for (method, set) in [("all-features", grammar()), ("fixed-features", cfg.fixed.clone())] {
                let (theta, _) = maxent(d, &set, cfg.horizon, cfg.l2)?;
                fits.push(Fit { method: method.into(), demos: n, trial, regret: score(&set, &theta), features: names(&set), theta, rounds: vec![] });
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let summary = cfg
        .methods()
        .into_iter()
        .flat_map(|m| cfg.demo_counts.iter().map(move |&n| (m, n)))
        .map(|(m, n)| {
            let v: Vec<&Fit> = fits.iter().filter(|f| f.method == m && f.demos == n).collect();
            let k = v.len().max(1) as f64;
            let mean = v.iter().map(|f| f.regret).sum::<f64>() / k;
            let sd = (v.iter().map(|f| (f.regret - mean).powi(2)).sum::<f64>() / (k - 1.0).max(1.0)).sqrt();
            Summary { method: m.into(), demos: n, mean_regret: mean, sd_regret: sd, mean_features: v.iter().map(|f| f.features.len() as f64).sum::<f64>() / k }
        })
        .collect();
    let lm = trained.map(|t| t.report);
    let mut r = Results { config: cfg.clone(), fits, summary, example_layout: layout(0).render(), lm, claims: vec![] };
    r.claims = write::claims(&r);
    Ok(r)
}

/// The `kiln algae` job: measure, then write report.json, report.md and the PNG into `out`.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = measure(cfg)?;
    crate::methods::finish(NAME, out, &results.claims, write::headline(&results), |d| write::write_report(d, &results))
}
