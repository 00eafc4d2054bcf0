//! `kiln scaling-laws sweep`: the method run on kiln's own models. Train a family of tiny
//! GPT-2-style character models of growing width on the built-in corpus (or a text file),
//! record the held-out loss at every evaluation checkpoint, fit L(N, D) = E + A/N^alpha + B/D^beta
//! (Huber on log L over the published grid of starts) on every model but the largest, and
//! predict the largest model's late checkpoints: ARE on its last 30% of tokens, as in the paper's
//! protocol. Deterministic: fixed seeds, counter-based data order.

use super::law::{fit_huber, published_grid, Law, Obs, HUBER_DELTA};
use crate::model::{Arch, Config as ModelConfig, Transformer};
use crate::report::{markdown_table, RunDir};
use crate::train::{evaluate, DataSpec, TextTokenizer, TrainConfig, Trainer};
use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// d_model of each family member, smallest first; the last one is the target
    pub widths: Vec<usize>,
    pub n_layers: usize,
    pub steps: usize,
    pub batch_size: usize,
    pub seq_len: usize,
    pub eval_every: usize,
    pub lr: f64,
    pub seed: u64,
    /// a UTF-8 text file; None = the built-in corpus
    pub text: Option<PathBuf>,
}

impl SweepConfig {
    /// Seconds: three widths, a few dozen steps.
    pub fn tiny() -> Self {
        SweepConfig { widths: vec![8, 16, 32], n_layers: 1, steps: 40, batch_size: 8, seq_len: 32, eval_every: 5, lr: 3e-3, seed: 0, text: None }
    }
    /// About a minute on 2 cores: five widths, 300 steps.
    pub fn small() -> Self {
        SweepConfig { widths: vec![8, 16, 24, 32, 48], n_layers: 2, steps: 300, batch_size: 16, seq_len: 64, eval_every: 25, lr: 3e-3, seed: 0, text: None }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepRun {
    pub width: usize,
    pub params: usize,
    /// (tokens seen, held-out loss) at every evaluation
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepResult {
    pub runs: Vec<SweepRun>,
    pub law: Law,
    /// mean |L - L_hat| / L over the target's checkpoints with tokens >= 0.7 T, in percent
    pub are_target: f64,
}

/// Train the family and fit/predict; each member is trained from the same seed and data order.
pub fn sweep(cfg: &SweepConfig) -> Result<SweepResult> {
    if cfg.widths.len() < 3 || cfg.eval_every == 0 || cfg.steps < cfg.eval_every {
        return Err(Error::Msg("scaling-laws sweep: need >= 3 widths and steps >= eval_every > 0".into()));
    }
    let spec = DataSpec::Text { path: cfg.text.clone(), tokenizer: TextTokenizer::Char, seq_len: cfg.seq_len, eval_fraction: 0.1 };
    let data = spec.load(None)?;
    let mut runs = Vec::new();
    for &w in &cfg.widths {
        let mut mc = ModelConfig::tiny(Arch::Gpt2, data.tokenizer.vocab_size());
        (mc.d_model, mc.n_heads, mc.n_kv_heads, mc.n_layers, mc.max_seq_len, mc.seed) = (w, 2, None, cfg.n_layers, cfg.seq_len, cfg.seed);
        let model = Transformer::new(mc)?;
        let params = model.param_count();
        let tc = TrainConfig { steps: cfg.steps, batch_size: cfg.batch_size, lr: cfg.lr, seed: cfg.seed, progress: false, ..TrainConfig::default() };
        let mut trainer = Trainer::new(model, tc, data.train.len())?;
        let mut points = Vec::new();
        let mut tokens = 0usize;
        for step in 1..=cfg.steps {
            tokens += trainer.step(&*data.train)?.tokens;
            if step % cfg.eval_every == 0 {
                points.push((tokens as f64, evaluate(&trainer.model, &*data.eval, cfg.batch_size, 4)?.loss));
            }
        }
        runs.push(SweepRun { width: w, params, points });
    }
    let (target, train) = runs.split_last().expect(">= 3 runs");
    let obs: Vec<Obs> = train.iter().flat_map(|r| r.points.iter().map(|&(d, loss)| Obs { n: r.params as f64, d, loss })).collect();
    let law = fit_huber(&obs, &published_grid(), HUBER_DELTA)?.law;
    let t_max = target.points.last().map(|p| p.0).unwrap_or(0.0);
    let test: Vec<&(f64, f64)> = target.points.iter().filter(|p| p.0 >= 0.7 * t_max).collect();
    let are = 100.0 * test.iter().map(|&&(d, l)| (law.predict(target.params as f64, d) - l).abs() / l).sum::<f64>() / test.len().max(1) as f64;
    Ok(SweepResult { runs, law, are_target: are })
}

/// Run the sweep and write report.json / report.md into `out`; returns the headline.
pub fn run_sweep(cfg: &SweepConfig, out: &Path) -> Result<String> {
    let r = sweep(cfg)?;
    let dir = RunDir::create(out)?;
    dir.write_json("report.json", &r)?;
    let rows: Vec<Vec<String>> = r
        .runs
        .iter()
        .map(|run| {
            let (d, l) = run.points.last().copied().unwrap_or((0.0, f64::NAN));
            vec![run.width.to_string(), run.params.to_string(), format!("{d:.0}"), format!("{l:.4}"), format!("{:.4}", r.law.predict(run.params as f64, d))]
        })
        .collect();
    let headline = format!("sweep: fitted on {} models, predicts the {}-parameter target's late checkpoints with ARE {:.2}%", r.runs.len() - 1, r.runs.last().map_or(0, |x| x.params), r.are_target);
    let md = format!(
        "# Scaling-law sweep on kiln's own models\n\n{headline}.\n\nCharacter-level GPT-2-style models, {} layer(s), widths {:?}, {} steps of {} x {} tokens, held-out loss every {} steps. \
         Fit: Huber (delta 1e-3) on log L over the published 1024-start grid, on every model but the largest.\n\n{}",
        cfg.n_layers, cfg.widths, cfg.steps, cfg.batch_size, cfg.seq_len, cfg.eval_every,
        markdown_table(&["width", "params", "tokens", "final held-out loss", "law's prediction"], &rows)
    );
    dir.write_text("report.md", &md)?;
    Ok(headline)
}
