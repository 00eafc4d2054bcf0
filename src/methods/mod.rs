//! Research methods (../shared/METHODS.md), one folder each, and `kiln repro`, which runs every
//! registered method at one scale and writes an index page linking their reports.
//!
//! Each method has a Config (Default = the paper's setting, tiny() = seconds, small() = the CPU
//! reproduction) and a run that writes report.json, report.md and PNGs into its own folder.
//! Registered so far: scaling-laws, intruders, linear-attn-learn, random-transformers, forgetting,
//! adaptive-compute, algae, erase, misinfo-eval, ttt-arc.

pub mod adaptive_compute;
pub mod algae;
pub mod erase;
pub mod forgetting;
pub mod intruders;
pub mod linear_attn_learn;
pub mod misinfo_eval;
pub mod random_transformers;
pub mod scaling_laws;
pub mod training;
pub mod ttt_arc;

use crate::report::{markdown_table, Report, RunDir};
use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One claim of a paper, as a run tests it.
#[derive(Clone, Debug, Serialize)]
pub struct Claim {
    pub name: String,
    pub statement: String,
    /// part of the pass/fail target of this scale (the others are reported only)
    pub target: bool,
    /// None when this run has no data for it
    pub holds: Option<bool>,
    pub numbers: String,
}

/// Did every target claim hold? None when no claim is a target.
pub fn claims_passed(claims: &[Claim]) -> Option<bool> {
    let mut targets = claims.iter().filter(|c| c.target).peekable();
    targets.peek()?;
    Some(targets.all(|c| c.holds == Some(true)))
}

/// One sentence of the target claims with their numbers; None when there is none.
pub fn claims_headline(claims: &[Claim]) -> Option<String> {
    let parts: Vec<String> = claims
        .iter()
        .filter(|c| c.target)
        .map(|c| format!("{} — {} ({})", c.name, if c.holds == Some(true) { "shown" } else { "NOT shown" }, c.numbers))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The claims as a markdown table: claim, target?, this run's verdict, numbers.
pub fn claims_table(claims: &[Claim]) -> String {
    let verdict = |h: Option<bool>| match h {
        Some(true) => "shown",
        Some(false) => "NOT shown",
        None => "-",
    };
    let rows: Vec<Vec<String>> = claims
        .iter()
        .map(|c| vec![c.name.clone(), if c.target { "yes" } else { "no" }.into(), verdict(c.holds).into(), c.numbers.clone()])
        .collect();
    markdown_table(&["claim", "target", "this run", "numbers"], &rows)
}

/// The flags every model-training method command shares (flattened into each command's args).
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Output folder (default: a new UTC-timestamped folder under runs/METHOD/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to train and run: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed of everything the run draws: data, initialisation, data order, samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl RunArgs {
    pub fn device(&self) -> Result<crate::tensor::Device> {
        self.device.parse()
    }

    /// Run `job` into the output folder and print its headline and where the report is.
    pub fn finish(&self, method: &str, job: impl FnOnce(&Path) -> Result<Report>) -> Result<()> {
        let out = self.out.clone().unwrap_or_else(|| RunDir::default_path(method));
        let r = job(&out)?;
        println!("{}\nreport: {}", r.headline, out.join("report.md").display());
        Ok(())
    }
}

/// Write a finished run's files into `out` with `write`, and describe it for the index: the
/// headline and whether every target claim held.
pub fn finish(name: &str, out: &Path, claims: &[Claim], headline: String, write: impl FnOnce(&RunDir) -> Result<()>) -> Result<Report> {
    let dir = RunDir::create(out)?;
    write(&dir)?;
    Ok(Report { method: name.to_string(), dir: dir.path().to_path_buf(), headline, passed: claims_passed(claims) })
}

/// Serialise a Device by its name ("cpu", "cuda:0"): methods' configs use it for report.json.
pub fn device_name<S: serde::Serializer>(d: &crate::tensor::Device, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_string())
}

/// The recipe the synthetic methods train their small models with: AdamW with beta2 0.98 and no
/// weight decay, gradients clipped to norm 1, warmup (5% of the steps) + cosine to 5% of `lr` or
/// a constant rate, and no progress output or checkpoint of the trainer's own.
pub fn small_model_recipe(steps: usize, batch_size: usize, lr: f64, cosine: bool, seed: u64) -> crate::train::TrainConfig {
    use crate::optim::Schedule;
    let schedule = if cosine { Schedule::WarmupCosine { warmup: (steps / 20).max(1), total: steps, min_ratio: 0.05 } } else { Schedule::Constant };
    crate::train::TrainConfig {
        steps,
        batch_size,
        lr,
        schedule,
        weight_decay: 0.0,
        beta2: 0.98,
        clip_grad_norm: Some(1.0),
        seed,
        progress: false,
        save_final: false,
        ..crate::train::TrainConfig::default()
    }
}

/// How big a run: seconds (smoke test), the CPU reproduction, or the paper's setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scale {
    Tiny,
    Small,
    Paper,
}

impl std::str::FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tiny" => Ok(Scale::Tiny),
            "small" => Ok(Scale::Small),
            "paper" => Ok(Scale::Paper),
            other => Err(format!("unknown scale \"{other}\" (expected tiny, small or paper)")),
        }
    }
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scale::Tiny => "tiny",
            Scale::Small => "small",
            Scale::Paper => "paper",
        })
    }
}

/// A method's Config at each scale: tiny (seconds), small (the CPU reproduction) and Default
/// (the paper's setting).
pub trait Scaled: Default {
    fn tiny() -> Self;
    fn small() -> Self;
    fn at(scale: Scale) -> Self {
        match scale {
            Scale::Tiny => Self::tiny(),
            Scale::Small => Self::small(),
            Scale::Paper => Self::default(),
        }
    }
}

/// Scaled for each method's Config, from its own `tiny()` and `small()`.
macro_rules! scaled {
    ($($method:ident),*) => {$(
        impl Scaled for $method::Config {
            fn tiny() -> Self {
                $method::Config::tiny()
            }
            fn small() -> Self {
                $method::Config::small()
            }
        }
    )*};
}
scaled!(adaptive_compute, algae, erase, forgetting, intruders, linear_attn_learn, misinfo_eval, random_transformers, scaling_laws, ttt_arc);

/// One line of the index: a method's report, or the error that stopped it.
#[derive(Clone, Debug, Serialize)]
pub struct IndexEntry {
    pub method: String,
    pub report: Option<Report>,
    pub error: Option<String>,
}

fn entry(method: &str, result: Result<Report>) -> IndexEntry {
    match result {
        Ok(r) => IndexEntry { method: method.into(), report: Some(r), error: None },
        Err(e) => IndexEntry { method: method.into(), report: None, error: Some(e.to_string()) },
    }
}

/// Run every registered method at `scale` into `out/<method>/` and write out/index.md and
/// out/index.json. `data_root` is the shared data folder (default ../shared/data); each method
/// reads its own subfolder. A failing method is listed with its error and makes the call fail
/// after the index is written.
pub fn repro(scale: Scale, out: &Path, data_root: Option<&Path>) -> Result<Vec<IndexEntry>> {
    let dir = RunDir::create(out)?;
    let mut entries = Vec::new();
    let cfg = scaling_laws::Config { data: data_root.map(|d| d.join("scaling-laws")), ..Scaled::at(scale) };
    let result = scaling_laws::run(&cfg, &out.join(scaling_laws::NAME));
    entries.push(entry(scaling_laws::NAME, result));
    entries.push(entry(intruders::NAME, intruders::run(&Scaled::at(scale), &out.join(intruders::NAME))));
    let result = linear_attn_learn::run(&Scaled::at(scale), &out.join(linear_attn_learn::NAME));
    entries.push(entry(linear_attn_learn::NAME, result));
    let result = random_transformers::run(&Scaled::at(scale), &out.join(random_transformers::NAME));
    entries.push(entry(random_transformers::NAME, result));
    let result = forgetting::run(&Scaled::at(scale), &out.join(forgetting::NAME));
    entries.push(entry(forgetting::NAME, result));
    let result = adaptive_compute::run(&Scaled::at(scale), &out.join(adaptive_compute::NAME));
    entries.push(entry(adaptive_compute::NAME, result));
    entries.push(entry(algae::NAME, algae::run(&Scaled::at(scale), &out.join(algae::NAME))));
    entries.push(entry(erase::NAME, erase::run(&Scaled::at(scale), &out.join(erase::NAME))));
    let result = misinfo_eval::run(&Scaled::at(scale), &out.join(misinfo_eval::NAME));
    entries.push(entry(misinfo_eval::NAME, result));
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| match (&e.report, &e.error) {
            (Some(r), _) => vec![
                e.method.clone(),
                match r.passed {
                    Some(true) => "pass".into(),
                    Some(false) => "FAIL".into(),
                    None => "-".into(),
                },
                r.headline.clone(),
                format!("[report]({}/report.md)", e.method),
            ],
            (None, err) => vec![e.method.clone(), "ERROR".into(), err.clone().unwrap_or_default(), "-".into()],
        })
        .collect();
    let note = if scale == Scale::Tiny {
        "\n\n`tiny` is the smoke scale: models train for a handful of steps, so a FAIL here says the claim cannot show at \
         this size, not that the code is broken. The CPU reproductions are `--scale small`; their reports are committed in \
         docs/results/."
    } else {
        ""
    };
    let index = format!(
        "# kiln repro, scale {scale}\n\nEvery registered method, run at scale `{scale}`; each links its report \
         (report.md, report.json, PNGs).{note}\n\n{}",
        markdown_table(&["method", "target", "outcome", "report"], &rows)
    );
    dir.write_text("index.md", &index)?;
    dir.write_json("index.json", &entries)?;
    let failed: Vec<String> = entries.iter().filter_map(|e| e.error.as_ref().map(|m| format!("{}: {m}", e.method))).collect();
    if failed.is_empty() {
        Ok(entries)
    } else {
        Err(Error::Msg(format!("repro: {} method(s) failed (see {}): {}", failed.len(), out.join("index.md").display(), failed.join("; "))))
    }
}
