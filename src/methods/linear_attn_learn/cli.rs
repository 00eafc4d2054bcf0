//! The `kiln linear-attn-learn` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{Scale, Scaled};
use crate::report::RunDir;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct LinearAttnLearnArgs {
    /// tiny (seconds), small (the CPU reproduction, minutes) or paper.
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Output folder (default: a new UTC-timestamped folder under runs/linear-attn-learn/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of everything the run draws: teachers, data, students' initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl LinearAttnLearnArgs {
    pub fn run(self) -> Result<()> {
        let out = self.out.unwrap_or_else(|| RunDir::default_path(NAME));
        let r = run(&super::Config { seed: self.seed, ..Scaled::at(self.scale) }, &out)?;
        println!("{}\nreport: {}", r.headline, out.join("report.md").display());
        Ok(())
    }
}
