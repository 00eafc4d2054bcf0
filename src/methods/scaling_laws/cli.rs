//! The `kiln scaling-laws` subcommands (parsed by clap in main.rs, run here).

use crate::methods::Scale;
use crate::report::RunDir;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum ScalingLawsCommand {
    /// Reproduce the published ARE table (GPT-3, OPT, Pile-T5) and the two design claims.
    Reproduce {
        /// The released data folder (default ../shared/data/scaling-laws).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output folder (default: a new UTC-timestamped folder under runs/scaling-laws/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// tiny: least squares only; small: + Huber from 32 starts; paper: + Huber from the 1024-start grid.
        #[arg(long, default_value = "small")]
        scale: Scale,
    },
    /// Train a family of tiny kiln models, fit the law on the smaller ones, predict the largest.
    Sweep {
        /// Output folder (default: a new UTC-timestamped folder under runs/scaling-laws-sweep/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// tiny (seconds) or small (about a minute); paper is treated as small on a CPU.
        #[arg(long, default_value = "tiny")]
        scale: Scale,
        /// A UTF-8 text file to train on (default: the built-in corpus).
        #[arg(long)]
        text: Option<PathBuf>,
    },
    /// Fit your own runs: a CSV with columns model, params, tokens, loss (one row per checkpoint).
    Fit {
        #[arg(long)]
        data: PathBuf,
    },
}

impl ScalingLawsCommand {
    pub fn run(self) -> Result<()> {
    match self {
        ScalingLawsCommand::Reproduce { data, out, scale } => {
            let out = out.unwrap_or_else(|| RunDir::default_path(super::NAME));
            let report = super::run(&super::Config { data, ..crate::methods::Scaled::at(scale) }, &out)?;
            println!("{}\nreport: {}", report.headline, out.join("report.md").display());
            Ok(())
        }
        ScalingLawsCommand::Sweep { out, scale, text } => {
            let mut cfg = if scale == Scale::Tiny { super::sweep::SweepConfig::tiny() } else { super::sweep::SweepConfig::small() };
            cfg.text = text;
            let out = out.unwrap_or_else(|| RunDir::default_path("scaling-laws-sweep"));
            let headline = super::sweep::run_sweep(&cfg, &out)?;
            println!("{headline}\nreport: {}", out.join("report.md").display());
            Ok(())
        }
        ScalingLawsCommand::Fit { data } => {
            let fit = super::fit_csv(&data, super::HuberGrid::Published)?;
            print!("{}", super::fit_summary(&fit));
            Ok(())
        }
    }
}
}
