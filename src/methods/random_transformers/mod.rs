//! Random transformers (`random-transformers`): Zhong & Andreas, "Algorithmic Capabilities of
//! Random Transformers" (2024).
//!
//! Claim reproduced: a transformer whose attention and MLP weights stay at their random
//! initialisation, with only the token embeddings, position embeddings and output head trained,
//! solves algorithmic tasks (modular addition, needle-in-a-haystack retrieval, decimal addition,
//! parenthesis balancing) once it is wide enough (paper: ~100% at width 1024, far less at 16),
//! and memorises random labels with fewer bits per trainable parameter than full training
//! (paper: ~2.9 full vs ~0.4 embedding-only); it also models language, if worse than full
//! training. Here: accuracy (held-out bits per token for language) vs width for both modes.
//!
//!   tasks   the six generators (token sequences, answer-only loss masks) and the bits measure
//!   train   the model, the two modes (embedding-only via Transformer::train_only), exact match
//!   write   report.json, report.md (tables, claims with numbers) and one PNG per task

pub mod cli;
pub mod tasks;
pub mod train;
mod write;

use crate::report::{Report, RunDir};
use crate::tensor::Device;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;
use tasks::{memorised_bits, TaskSpec, TASK_NAMES};
use train::{train_run, Budget, Mode};

pub const NAME: &str = "random-transformers";

/// One task and the budget each of its (width, mode) runs gets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskPlan {
    pub spec: TaskSpec,
    pub budget: Budget,
    /// this task's widths when they differ from `Config::widths` (`--widths` clears it)
    pub widths: Option<Vec<usize>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    pub tasks: Vec<TaskPlan>,
    /// d_model of the models compared, smallest first (multiples of 4)
    pub widths: Vec<usize>,
    pub seed: u64,
    /// where the models train (`--device`); CPU for tiny and small, a GPU for the paper scale
    #[serde(serialize_with = "crate::methods::device_name")]
    pub device: Device,
}

fn plan(spec: TaskSpec, steps: usize, batch_size: usize, lr_embedding: f64, lr_full: f64) -> TaskPlan {
    TaskPlan { spec, budget: Budget { steps, batch_size, lr_embedding, lr_full }, widths: None }
}

impl Default for Config {
    /// The paper's setting (a GPU job): p = 199, up to 30 needle pairs, 10-digit addition,
    /// strings up to 60, widths 16..1024.
    fn default() -> Self {
        use TaskSpec::*;
        Config {
            tasks: vec![
                plan(ModAdd { p: 199, test_fraction: 0.05 }, 5000, 256, 1e-3, 1e-3),
                plan(Needle { max_pairs: 30, n_keys: 100, n_values: 100, n_train: 100_000, n_test: 2000 }, 5000, 128, 1e-3, 1e-3),
                plan(DecimalAdd { digits: 10, n_train: 100_000, n_test: 2000 }, 5000, 128, 1e-3, 1e-3),
                plan(Parens { max_len: 60, n_train: 100_000, n_test: 2000 }, 5000, 128, 1e-3, 1e-3),
                plan(Memorise { n_inputs: 512, n_labels: 512, n_examples: 200_000 }, 5000, 512, 1e-3, 1e-3),
                plan(Lm { symbols: 64, seq_len: 64, n_train: 100_000, n_test: 2000 }, 5000, 128, 1e-3, 1e-3),
            ],
            widths: vec![16, 64, 256, 1024],
            seed: 0,
            device: Device::Cpu,
        }
    }
}

impl Config {
    /// Seconds: every task, two tiny widths, a few steps (a smoke run for tests).
    pub fn tiny() -> Self {
        use TaskSpec::*;
        Config {
            tasks: vec![
                plan(ModAdd { p: 11, test_fraction: 0.05 }, 4, 16, 1e-3, 1e-3),
                plan(Needle { max_pairs: 3, n_keys: 6, n_values: 6, n_train: 64, n_test: 16 }, 4, 16, 1e-3, 1e-3),
                plan(DecimalAdd { digits: 2, n_train: 64, n_test: 16 }, 4, 16, 1e-3, 1e-3),
                plan(Parens { max_len: 6, n_train: 64, n_test: 16 }, 4, 16, 1e-3, 1e-3),
                plan(Memorise { n_inputs: 8, n_labels: 4, n_examples: 32 }, 4, 16, 1e-3, 1e-3),
                plan(Lm { symbols: 6, seq_len: 8, n_train: 64, n_test: 16 }, 4, 16, 1e-3, 1e-3),
            ],
            widths: vec![8, 16],
            seed: 0,
            device: Device::Cpu,
        }
    }

    /// The CPU reproduction (about 13 minutes on 2 busy cores): modular addition mod 59 and
    /// language modelling get their own widths up to 256 (embedding-only needs width 256 here: at
    /// 128 it memorises the training split without generalising, see
    /// docs/results/random-transformers/README.md); the other tasks are shrunk (fewer pairs,
    /// digits, shorter strings) to fit at widths up to 128.
    pub fn small() -> Self {
        use TaskSpec::*;
        let mod_add = TaskPlan { widths: Some(vec![16, 64, 256]), ..plan(ModAdd { p: 59, test_fraction: 0.05 }, 800, 256, 3e-3, 1e-3) };
        // language modelling from random weights needs width too (at 128 embedding-only barely
        // beats a previous-token model; see the README)
        let lm = TaskPlan { widths: Some(vec![16, 64, 256]), ..plan(Lm { symbols: 16, seq_len: 24, n_train: 8000, n_test: 500 }, 1500, 32, 1e-2, 1e-3) };
        Config {
            tasks: vec![
                mod_add,
                plan(Needle { max_pairs: 6, n_keys: 12, n_values: 12, n_train: 20_000, n_test: 1000 }, 800, 32, 1e-3, 1e-3),
                plan(DecimalAdd { digits: 3, n_train: 20_000, n_test: 1000 }, 1200, 32, 1e-3, 1e-3),
                plan(Parens { max_len: 12, n_train: 20_000, n_test: 1000 }, 600, 32, 1e-3, 1e-3),
                plan(Memorise { n_inputs: 96, n_labels: 16, n_examples: 8192 }, 1000, 128, 1e-3, 1e-3),
                lm,
            ],
            widths: vec![16, 64, 128],
            seed: 0,
            device: Device::Cpu,
        }
    }

    /// Keep only `task` ("all" keeps every one); an unknown name is an error listing the valid ones.
    pub fn select(mut self, task: &str) -> Result<Self> {
        if task == "all" {
            return Ok(self);
        }
        if !TASK_NAMES.contains(&task) {
            return Err(Error::Msg(format!("random-transformers: unknown --task \"{task}\" (expected all, {})", TASK_NAMES.join(", "))));
        }
        self.tasks.retain(|t| t.spec.name() == task);
        Ok(self)
    }

    /// The widths `plan` runs at: its own, else the config's.
    pub fn widths_of<'a>(&'a self, plan: &'a TaskPlan) -> &'a [usize] {
        plan.widths.as_deref().unwrap_or(&self.widths)
    }

    /// Replace every task's widths with a comma-separated list ("16,64,128").
    pub fn with_widths(mut self, list: &str) -> Result<Self> {
        let err = |why: String| Error::Msg(format!("random-transformers: bad --widths \"{list}\": {why}"));
        let mut widths = Vec::new();
        for part in list.split(',').map(str::trim) {
            let w: usize = part.parse().map_err(|_| err(format!("\"{part}\" is not a whole number")))?;
            if w == 0 || w % 4 != 0 {
                return Err(err(format!("{w} is not a positive multiple of 4 (the model has 4 heads)")));
            }
            widths.push(w);
        }
        widths.sort_unstable();
        widths.dedup();
        self.widths = widths;
        for t in &mut self.tasks {
            t.widths = None;
        }
        Ok(self)
    }
}

/// One (task, width, mode) run, as report.json lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub task: String,
    pub width: usize,
    pub mode: Mode,
    /// exact-match accuracy on the held-out split (memorisation: on its training set)
    pub accuracy: f64,
    pub trainable_params: usize,
    pub total_params: usize,
    pub train_accuracy: f64,
    pub final_loss: f64,
    pub seconds: f64,
    /// memorisation only: bits of label information held, and per trainable parameter
    pub bits: Option<f64>,
    pub bits_per_param: Option<f64>,
    /// language modelling only: held-out bits per token
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_bits: Option<f64>,
}

/// Everything a run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub results: Vec<RunResult>,
    pub claims: Vec<write::Claim>,
    /// the `lm` task's (source entropy, previous-token model) bits per token; in the claims' numbers
    #[serde(skip)]
    pub lm_floors: Option<(f64, f64)>,
}

/// Train every (task, width, mode) of `cfg`.
pub fn measure(cfg: &Config) -> Result<Vec<RunResult>> {
    if cfg.tasks.is_empty() || cfg.tasks.iter().any(|t| cfg.widths_of(t).is_empty()) {
        return Err(Error::Msg("random-transformers: nothing to run (no tasks, or a task without widths)".into()));
    }
    let mut out = Vec::new();
    for plan in &cfg.tasks {
        let data = plan.spec.generate(cfg.seed)?;
        for &width in cfg.widths_of(plan) {
            for mode in [Mode::EmbeddingOnly, Mode::Full] {
                let label = format!("{} w{width} {}", data.name, mode.name());
                let (_, s) = train_run(&data, width, mode, &plan.budget, cfg.seed, cfg.device, &label)?;
                let bits = match plan.spec {
                    TaskSpec::Memorise { n_labels, n_examples, .. } => Some(memorised_bits(n_examples, n_labels, s.accuracy)),
                    _ => None,
                };
                let bits_line = s.test_bits.map_or(String::new(), |b| format!(", {b:.3} bits/token held out"));
                eprintln!("{label}: accuracy {:.3} (train {:.3}){bits_line}, {} trainable, {:.0}s", s.accuracy, s.train_accuracy, s.trainable_params, s.seconds);
                out.push(RunResult {
                    task: data.name.to_string(),
                    width,
                    mode,
                    accuracy: s.accuracy,
                    trainable_params: s.trainable_params,
                    total_params: s.total_params,
                    train_accuracy: s.train_accuracy,
                    final_loss: s.final_loss,
                    seconds: s.seconds,
                    bits,
                    bits_per_param: bits.map(|b| b / s.trainable_params as f64),
                    test_bits: s.test_bits,
                });
            }
        }
    }
    Ok(out)
}

/// The `kiln random-transformers` job: measure, then write report.json, report.md and PNGs.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = measure(cfg)?;
    let lm_floors = write::lm_floors(cfg)?;
    let claims = write::claims(cfg, &results, lm_floors);
    let results = Results { config: cfg.clone(), results, claims, lm_floors };
    let dir = RunDir::create(out)?;
    write::write_report(&dir, &results)?;
    let passed = crate::methods::claims_passed(&results.claims);
    Ok(Report { method: NAME.to_string(), dir: dir.path().to_path_buf(), headline: write::headline(&results), passed })
}
