//! Intruder dimensions: LoRA vs full fine-tuning, seen through the SVD (METHODS.md §2; Shuttleworth
//! et al., "LoRA vs Full Fine-tuning: An Illusion of Equivalence").
//!
//!   analyze     per weight matrix, the tuned model's top-k singular vectors against the base's
//!   experiment  pre-train, fine-tune (LoRA / rsLoRA ranks, full), count intruders, scale them down
//!
//! `kiln intruders analyze --base A --tuned B` and `kiln intruders experiment --scale tiny|small`.

pub mod analyze;
pub mod claims;
pub mod cli;
pub mod experiment;

use crate::report::plot::{line_plot_png, Series};
use crate::report::{markdown_table, Report, RunDir};
use crate::model::Transformer;
use crate::Result;
use analyze::{eps_key, heatmap_png, Analysis, EPS_GRID};
use experiment::{run_experiment, Experiment};
use std::path::Path;

pub const NAME: &str = "intruders";

/// The experiment's settings. Default = the largest CPU-affordable setting with the paper's
/// ranks; tiny() = seconds (tests); small() = the CPU reproduction.
#[derive(Clone, Debug)]
pub struct Config {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub seq_len: usize,
    pub batch_size: usize,
    pub pretrain_steps: usize,
    pub lr_pretrain: f64,
    /// LoRA ranks (alpha = 2 r), run as LoRA and as rsLoRA
    pub ranks: Vec<usize>,
    pub lr_lora: f64,
    /// rsLoRA's scale alpha / sqrt(r) is sqrt(r) times LoRA's at alpha = 2r, so it gets its own
    /// (smaller) learning rate
    pub lr_rslora: f64,
    pub lr_full: f64,
    /// fine-tuning stops at this task accuracy (checked every eval_every steps) or at ft_steps
    pub target_acc: f64,
    pub ft_steps: usize,
    pub eval_every: usize,
    /// the downstream task: reverse task_len symbols drawn from task_symbols
    pub task_len: usize,
    pub task_symbols: usize,
    pub task_examples: usize,
    /// top-k tuned singular vectors per matrix
    pub k: usize,
    /// the intruder threshold for the headline and the scale-down
    pub eps: f64,
    pub lambdas: Vec<f64>,
    pub seed: u64,
    /// where the models train and are evaluated (the SVDs run on the CPU)
    pub device: crate::tensor::Device,
}

impl Default for Config {
    fn default() -> Self {
        Config { d_model: 256, n_layers: 4, pretrain_steps: 3000, ft_steps: 3000, ..Config::small() }
    }
}

impl Config {
    pub fn tiny() -> Self {
        Config {
            d_model: 32,
            n_layers: 1,
            n_heads: 2,
            seq_len: 32,
            batch_size: 8,
            pretrain_steps: 30,
            lr_pretrain: 3e-3,
            ranks: vec![1, 4],
            lr_lora: 3e-3,
            lr_rslora: 1e-3,
            lr_full: 1e-3,
            target_acc: 0.5,
            ft_steps: 20,
            eval_every: 10,
            task_len: 4,
            task_symbols: 6,
            task_examples: 512,
            k: 8,
            eps: 0.5,
            lambdas: vec![1.0, 0.5, 0.0],
            seed: 0,
            device: crate::tensor::Device::Cpu,
        }
    }
    pub fn small() -> Self {
        Config {
            d_model: 128,
            n_layers: 2,
            n_heads: 4,
            seq_len: 64,
            batch_size: 32,
            pretrain_steps: 400,
            lr_pretrain: 3e-3,
            ranks: vec![1, 8, 64],
            lr_lora: 3e-3,
            lr_rslora: 1e-3,
            // full fine-tuning at a tenth of LoRA's rate, as is usual (and as in the paper); at
            // 1e-3 it reaches the target in 250 steps but moves the spectrum as much as LoRA r=8
            lr_full: 3e-4,
            target_acc: 0.9,
            ft_steps: 1000,
            eval_every: 25,
            task_len: 5,
            task_symbols: 8,
            task_examples: 4096,
            k: 10,
            eps: 0.5,
            lambdas: vec![1.0, 0.75, 0.5, 0.25, 0.0],
            seed: 0,
            device: crate::tensor::Device::Cpu,
        }
    }
}


/// Write STEM.json, STEM.md and STEM-heatmap.png of an analysis (`analyze` writes report.*, the
/// experiment its scaled-down run as analysis.*).
pub fn write_analysis(dir: &RunDir, a: &Analysis, k: usize, stem: &str) -> Result<()> {
    dir.write_bytes(&format!("{stem}-heatmap.png"), &heatmap_png(a, k)?)?;
    let rows: Vec<Vec<String>> = a
        .matrices
        .iter()
        .map(|m| {
            let mut r = vec![m.name.clone(), format!("{}x{}", m.shape[0], m.shape[1])];
            r.extend(EPS_GRID.iter().step_by(2).map(|e| m.intruders_eps[&eps_key(*e)].to_string()));
            r
        })
        .collect();
    let md = format!(
        "# Intruder dimensions\n\nTop-{k} singular vectors of each tuned matrix against every singular vector of the base; \
         an intruder has max |cos| < eps.\n\nTotals: {}\n\n{}",
        a.totals.iter().map(|(e, n)| format!("eps {e}: {n}")).collect::<Vec<_>>().join(", "),
        markdown_table(&["matrix", "out x in", "eps 0.1", "eps 0.3", "eps 0.5", "eps 0.7", "eps 0.9"], &rows)
    );
    dir.write_text(&format!("{stem}.md"), &md)?;
    dir.write_json(&format!("{stem}.json"), &serde_json::json!({"k": k, "totals": a.totals, "matrices": a.matrices}))?;
    Ok(())
}

/// A model for `kiln intruders analyze`: an HF model directory (config.json beside safetensors
/// weights) or a kiln checkpoint (a step-* folder or a run folder).
pub fn load_model(path: &Path) -> Result<Transformer> {
    let hf_weights = path.join("model.safetensors").is_file() || path.join("model.safetensors.index.json").is_file();
    if path.join("config.json").is_file() && hf_weights {
        return Ok(crate::io::hf::load::load_model(path)?.0);
    }
    Ok(crate::train::load_checkpoint(path)?.0)
}

/// Analyze `tuned` against `base` into `out` (report.json, report.md, report-heatmap.png). With
/// `adapter` (a PEFT directory), the tuned model is the base (or `tuned`) plus that adapter,
/// folded in at its scaling.
pub fn analyze_checkpoints(base: &Path, tuned: Option<&Path>, adapter: Option<&Path>, k: usize, out: &Path) -> Result<Analysis> {
    let b = load_model(base)?;
    let mut t = match (tuned, adapter) {
        (Some(p), _) => load_model(p)?,
        (None, Some(_)) => load_model(base)?,
        (None, None) => return Err(crate::Error::Msg("intruders analyze: give --tuned, --adapter, or both".into())),
    };
    if let Some(dir) = adapter {
        crate::io::hf::peft::load_adapter(&mut t, dir)?;
    }
    let a = analyze::analyze(&analyze::block_matrices(&b)?, &analyze::block_matrices(&t)?, k)?;
    write_analysis(&RunDir::create(out)?, &a, k, "report")?;
    Ok(a)
}

fn claims_table(c: &[claims::Claim]) -> String {
    let rows: Vec<Vec<String>> = c.iter().map(|c| vec![c.claim.clone(), if c.shown { "shown".into() } else { "NOT shown at this scale".into() }, c.numbers.clone()]).collect();
    markdown_table(&["claim (the paper)", "this run", "numbers"], &rows)
}

fn experiment_md(cfg: &Config, e: &Experiment, headline: &str) -> String {
    let key = eps_key(cfg.eps);
    let rows: Vec<Vec<String>> = e
        .runs
        .iter()
        .map(|r| {
            vec![
                r.method.clone(),
                if r.rank == 0 { "-".into() } else { r.rank.to_string() },
                r.trainable_params.to_string(),
                r.steps.to_string(),
                format!("{:.3}", r.task_acc),
                format!("{:.4}", r.pretrain_loss),
                r.intruders_eps[&eps_key(0.3)].to_string(),
                r.intruders_eps[&key].to_string(),
                r.intruders_eps[&eps_key(0.7)].to_string(),
            ]
        })
        .collect();
    let sd: Vec<Vec<String>> = e.scale_down.iter().map(|s| vec![format!("{} r={}", s.method, s.rank), format!("{}", s.lambda), s.directions.to_string(), format!("{:.3}", s.task_acc), format!("{:.4}", s.pretrain_loss)]).collect();
    format!(
        "# Intruder dimensions: LoRA vs full fine-tuning\n\n{headline}\n\n## Claims\n\n{}\n\n## Runs\n\n\
         Pre-trained: a Llama-style character model (d_model {}, {} layers) on the built-in corpus for {} steps: pre-training loss {:.4} \
         (measured on the pre-training windows: the corpus is small enough to memorise, so forgetting shows as this loss rising), \
         task accuracy {:.3} before fine-tuning. Fine-tuned on reversing {} symbols (of {}), each run until task accuracy {} or {} steps; \
         LoRA on q, k, v, o, gate, up, down with alpha = 2r (both scalings; rsLoRA with its own, smaller learning rate, since its scale is sqrt(r) times LoRA's). \
         Task accuracy is per answer token. Intruders: top-{} tuned singular vectors whose max |cos| with every base singular vector is below eps.\n\n{}\n\n\
         ## Scaling the intruders down\n\nThe lowest-rank LoRA run: each intruder direction's singular value times lambda (eps {}).\n\n{}\n\n\
         Plots: counts-vs-eps.png, scale-down.png; the scaled-down run's per-matrix analysis in analysis.md / analysis.json with its |cos| heat map analysis-heatmap.png.\n",
        claims_table(&claims::judge(e, cfg.eps)),
        cfg.d_model, cfg.n_layers, cfg.pretrain_steps, e.base_pretrain_loss, e.base_task_acc, cfg.task_len, cfg.task_symbols, cfg.target_acc, cfg.ft_steps, cfg.k,
        markdown_table(&["method", "rank", "trainable", "steps", "task acc", "pre-training loss after", "intruders eps 0.3", &format!("eps {key}"), "eps 0.7"], &rows),
        cfg.eps,
        markdown_table(&["run", "lambda", "directions", "task acc", "pre-training loss"], &sd)
    )
}

/// The experiment into `out`: report.json (`runs`, `scale_down`), report.md and PNGs.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let (e, shown) = run_experiment(cfg)?;
    let dir = RunDir::create(out)?;
    let key = eps_key(cfg.eps);
    let count = |m: &str, r: usize| e.runs.iter().find(|x| x.method == m && x.rank == r).map(|x| x.intruders_eps[&key]);
    let r1 = cfg.ranks.iter().min().copied().unwrap_or(1);
    let (lora_min, full) = (count("lora", r1).unwrap_or(0), count("full", 0).unwrap_or(0));
    let passed = lora_min > full;
    let headline = format!(
        "LoRA r={r1} has {lora_min} intruders at eps {key} vs {full} for full fine-tuning ({})",
        if passed { "the paper's claim shows" } else { "the paper's claim does NOT show at this scale" }
    );
    let series: Vec<Series> = e
        .runs
        .iter()
        .map(|r| Series { label: if r.rank == 0 { "full".into() } else { format!("{} r={}", r.method, r.rank) }, points: EPS_GRID.iter().map(|&x| (x, r.intruders_eps[&eps_key(x)] as f64)).collect() })
        .collect();
    dir.write_bytes("counts-vs-eps.png", &line_plot_png("Intruder dimensions vs threshold", "eps", "intruders (all matrices)", &series)?)?;
    if !e.scale_down.is_empty() {
        let pts = |f: fn(&experiment::ScaleDown) -> f64| e.scale_down.iter().map(|s| (s.lambda, f(s))).collect();
        let s = [Series { label: "task accuracy".into(), points: pts(|s| s.task_acc) }, Series { label: "pre-training loss / base".into(), points: pts(|s| s.pretrain_loss) }];
        let s = [s[0].clone(), Series { label: s[1].label.clone(), points: s[1].points.iter().map(|&(x, y)| (x, y / e.base_pretrain_loss)).collect() }];
        dir.write_bytes("scale-down.png", &line_plot_png("Scaling intruder singular values by lambda", "lambda", "value", &s)?)?;
    }
    if let Some(a) = &shown {
        write_analysis(&dir, a, cfg.k, "analysis")?;
    }
    dir.write_json("report.json", &serde_json::json!({"config": format!("{cfg:?}"), "base_pretrain_loss": e.base_pretrain_loss, "base_task_acc": e.base_task_acc, "runs": e.runs, "scale_down": e.scale_down, "claims": claims::judge(&e, cfg.eps), "headline": headline}))?;
    dir.write_text("report.md", &experiment_md(cfg, &e, &headline))?;
    Ok(Report { method: NAME.into(), dir: out.to_path_buf(), headline, passed: Some(passed) })
}
