//! The `kiln algae` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{Scale, Scaled};
use crate::report::RunDir;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AlgaeArgs {
    /// tiny (seconds), small (the CPU reproduction, 7 x 7 grids) or paper (9 x 9, 20 trials).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Trials per demo count (default: the scale's).
    #[arg(long)]
    pub trials: Option<usize>,
    /// Output folder (default: a new UTC-timestamped folder under runs/algae/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the layouts (demonstrations and held-out).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl AlgaeArgs {
    pub fn run(self) -> Result<()> {
        let mut c = super::Config { seed: self.seed, ..Scaled::at(self.scale) };
        if let Some(t) = self.trials {
            c.trials = t;
        }
        let out = self.out.unwrap_or_else(|| RunDir::default_path(NAME));
        let r = run(&c, &out)?;
        println!("{}\nreport: {}", r.headline, out.join("report.md").display());
        Ok(())
    }
}
