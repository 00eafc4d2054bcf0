//! Scaling-law estimation (`scaling-laws`): Choshen, Zhang & Andreas, "A Hitchhiker's Guide to
//! Scaling Law Estimation" (2024).
//!
//! Claim reproduced: fitting L(N, D) = E + A / N^alpha + B / D^beta to the k smallest models of a
//! family, on checkpoints up to a fraction p of training, predicts the largest model's late losses
//! with the absolute relative errors (ARE) of the published table (GPT-3, OPT, Pile-T5). Also
//! tested with numbers: (1) fitting on intermediate checkpoints beats fitting on final losses only;
//! (2) training models close in size to the target predict it best.
//!
//!   data      loaders for the three families and a generic CSV (model, params, tokens, loss)
//!   law       the functional form and both fit variants (bounded least squares; Huber + L-BFGS)
//!   protocol  train/test selection, ARE, the reference table
//!   claims    the two design claims
//!   write     report.json, report.md and the heat-maps
//!
//! Not here yet: `kiln scaling-laws sweep` (training a family of tiny kiln models and predicting
//! the largest) needs the transformer trainer, which does not exist yet.

pub mod cli;
pub mod claims;
pub mod data;
pub mod law;
pub mod protocol;
pub mod sweep;
mod write;

use crate::report::{Report, RunDir};
use crate::{Error, Result};
use data::Family;
use law::{fit_huber, fit_lsq, grid_of, published_grid, Fit, Law, HUBER_DELTA, PUBLISHED_START};
use protocol::{are, test_points, train_points, within_tolerance, PS, REFERENCE};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub const NAME: &str = "scaling-laws";

/// Where the released data lives relative to the repository root.
pub const DEFAULT_DATA: &str = "../shared/data/scaling-laws";

/// Which starts the Huber variant runs from in every cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HuberGrid {
    /// Not run (least squares only).
    Off,
    /// Two values per parameter (a, b in {3, 9}, e in {-0.5, 0.5}, alpha, beta in {0.25, 0.75}): 32 starts.
    Coarse,
    /// The published 4^5 = 1024-start grid.
    Published,
}

impl HuberGrid {
    pub fn starts(self) -> Vec<[f64; 5]> {
        match self {
            HuberGrid::Off => Vec::new(),
            HuberGrid::Coarse => grid_of(&[3.0, 9.0], &[3.0, 9.0], &[-0.5, 0.5], &[0.25, 0.75], &[0.25, 0.75]),
            HuberGrid::Published => published_grid(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The released data folder; None = DEFAULT_DATA found from the current directory or the crate.
    pub data: Option<PathBuf>,
    /// Starts of the Huber variant (reported next to the least-squares ARE).
    pub huber: HuberGrid,
    /// Least-squares restarts used to explain the cells that miss the reference.
    pub explain: HuberGrid,
}

impl Default for Config {
    /// The paper setting: both variants on every cell, the Huber variant from its full grid.
    fn default() -> Self {
        Config { data: None, huber: HuberGrid::Published, explain: HuberGrid::Published }
    }
}

impl Config {
    /// Seconds: least squares on every cell (the published variant), misses explained from 32 restarts.
    pub fn tiny() -> Self {
        Config { data: None, huber: HuberGrid::Off, explain: HuberGrid::Coarse }
    }
    /// The CPU reproduction: both variants on every cell, Huber from the coarse 32-start grid.
    pub fn small() -> Self {
        Config { data: None, huber: HuberGrid::Coarse, explain: HuberGrid::Published }
    }
}

/// Find the data folder: `explicit` if given, else DEFAULT_DATA relative to the current directory,
/// else relative to this crate's source tree. A clear error lists where it looked.
pub fn resolve_data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => vec![PathBuf::from(DEFAULT_DATA), Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_DATA)],
    };
    for c in &candidates {
        if c.join("gpt3_extracted.csv").is_file() {
            return Ok(c.clone());
        }
    }
    let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    Err(Error::Msg(format!(
        "scaling-laws data not found (looked for gpt3_extracted.csv in: {}); give its folder with `kiln scaling-laws reproduce --data DIR`, or the folder above it with `kiln repro --data DIR`",
        looked.join(", ")
    )))
}

/// One cell of the reference table, with our numbers next to the published one.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub family: String,
    pub k: usize,
    pub p: f64,
    /// Ours: bounded least squares from the published start (the protocol of the reference).
    pub are: Option<f64>,
    pub reference_are: Option<f64>,
    /// Within max(2 points, 25% relative) of the reference (None when the reference is unreadable).
    pub within_tolerance: Option<bool>,
    /// The Huber variant's ARE (None when not run).
    pub are_huber: Option<f64>,
    pub n_train: usize,
    pub n_test: usize,
    pub lsq: Option<Fit>,
    pub huber: Option<Fit>,
    /// Why a miss misses: fit variant, start, local optimum (only for misses).
    pub explanation: Option<String>,
}

/// Everything the run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub data: String,
    pub cells: Vec<Cell>,
    /// Readable cells and how many land within tolerance.
    pub readable: usize,
    pub hits: usize,
    pub claims: claims::Claims,
}

/// Fit and score one (family, k, p) cell.
fn run_cell(family: &Family, k: usize, p: f64, reference: Option<f64>, cfg: &Config) -> Result<Cell> {
    let indices: Vec<usize> = (0..k).collect();
    let train = train_points(family, &indices, p);
    let test = test_points(family);
    let mut cell = Cell {
        family: family.name.clone(),
        k,
        p,
        are: None,
        reference_are: reference,
        within_tolerance: None,
        are_huber: None,
        n_train: train.len(),
        n_test: test.len(),
        lsq: None,
        huber: None,
        explanation: None,
    };
    if train.is_empty() || test.is_empty() {
        cell.explanation = Some(format!("no {} points under this protocol: nothing to fit", if train.is_empty() { "training" } else { "test" }));
        return Ok(cell);
    }
    let lsq = fit_lsq(&train, &PUBLISHED_START)?;
    cell.are = Some(are(&lsq.law, &test));
    cell.lsq = Some(lsq);
    let grid = cfg.huber.starts();
    if !grid.is_empty() {
        let h = fit_huber(&train, &grid, HUBER_DELTA)?;
        cell.are_huber = Some(are(&h.law, &test));
        cell.huber = Some(h);
    }
    if let (Some(ours), Some(r)) = (cell.are, reference) {
        let hit = within_tolerance(ours, r);
        cell.within_tolerance = Some(hit);
        if !hit {
            cell.explanation = Some(claims::explain_miss(&cell, &train, &test, &cfg.explain.starts())?);
        }
    }
    Ok(cell)
}

/// Every cell of the reference table, the two claims, for the families in `dir`.
pub fn reproduce(cfg: &Config) -> Result<Results> {
    let dir = resolve_data_dir(cfg.data.as_deref())?;
    let families = data::load_families(&dir)?;
    let mut cells = Vec::new();
    for row in &REFERENCE {
        let family = families.iter().find(|f| f.name == row.family).ok_or_else(|| Error::Msg(format!("family {} not loaded", row.family)))?;
        if row.k + 1 > family.models.len() {
            return Err(Error::Msg(format!("{}: k = {} needs {} models, the data has {}", family.name, row.k, row.k + 1, family.models.len())));
        }
        for (j, &p) in PS.iter().enumerate() {
            cells.push(run_cell(family, row.k, p, row.are[j], cfg)?);
        }
    }
    let readable = cells.iter().filter(|c| c.within_tolerance.is_some()).count();
    let hits = cells.iter().filter(|c| c.within_tolerance == Some(true)).count();
    let claims = claims::evaluate(&families)?;
    Ok(Results { config: cfg.clone(), data: dir.display().to_string(), cells, readable, hits, claims })
}

/// The `kiln scaling-laws reproduce` job: run the table and write the report into `out`.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = reproduce(cfg)?;
    let dir = RunDir::create(out)?;
    write::write_report(&dir, &results)?;
    let frac = results.hits as f64 / results.readable.max(1) as f64;
    Ok(Report {
        method: NAME.to_string(),
        dir: dir.path().to_path_buf(),
        headline: format!(
            "{} of {} readable reference cells ({:.0}%) within max(2 points, 25%) of the published ARE (target: 90%)",
            results.hits,
            results.readable,
            100.0 * frac
        ),
        passed: Some(frac >= 0.9),
    })
}

/// A user's own runs: fit both variants on every checkpoint of `csv` and predict each model.
pub struct UserFit {
    pub family: Family,
    pub lsq: Fit,
    pub huber: Fit,
}

pub fn fit_csv(csv: &Path, grid: HuberGrid) -> Result<UserFit> {
    let family = data::load_csv(csv)?;
    let obs: Vec<law::Obs> = family
        .models
        .iter()
        .flat_map(|m| m.checkpoints.iter().map(move |c| law::Obs { n: m.params, d: c.tokens, loss: c.loss }))
        .collect();
    let lsq = fit_lsq(&obs, &PUBLISHED_START)?;
    let starts = if grid == HuberGrid::Off { HuberGrid::Coarse.starts() } else { grid.starts() };
    let huber = fit_huber(&obs, &starts, HUBER_DELTA)?;
    Ok(UserFit { family, lsq, huber })
}

/// E, A, B, alpha, beta of a law, for printing.
pub fn describe(law: &Law) -> String {
    format!("E = {:.4}, A = {:.4e}, B = {:.4e}, alpha = {:.4}, beta = {:.4}", law.e.exp(), law.a.exp(), law.b.exp(), law.alpha, law.beta)
}

/// The text `kiln scaling-laws fit` prints: both fits' parameters, then each model's last
/// checkpoint against both predictions.
pub fn fit_summary(fit: &UserFit) -> String {
    let mut s = format!(
        "{} models, {} checkpoints\nleast squares (published start): {}  (cost {:.3e}{})\nHuber on log L ({} starts):       {}  (objective {:.3e}{})\n\n",
        fit.family.models.len(),
        fit.family.models.iter().map(|m| m.checkpoints.len()).sum::<usize>(),
        describe(&fit.lsq.law),
        fit.lsq.objective,
        if fit.lsq.converged { "" } else { ", NOT converged" },
        fit.huber.starts,
        describe(&fit.huber.law),
        fit.huber.objective,
        if fit.huber.converged { "" } else { ", NOT converged" },
    );
    s += &format!("{:<16} {:>12} {:>12} {:>10} {:>12} {:>12}\n", "model", "params", "tokens", "loss", "pred (lsq)", "pred (huber)");
    for m in &fit.family.models {
        if let Some(c) = m.checkpoints.last() {
            s += &format!(
                "{:<16} {:>12.4e} {:>12.4e} {:>10.4} {:>12.4} {:>12.4}\n",
                m.name,
                m.params,
                c.tokens,
                c.loss,
                fit.lsq.law.predict(m.params, c.tokens),
                fit.huber.law.predict(m.params, c.tokens)
            );
        }
    }
    s
}
