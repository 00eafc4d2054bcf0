//! The `kiln random-transformers` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{RunArgs, Scale, Scaled};
use crate::Result;

#[derive(clap::Args)]
pub struct RandomTransformersArgs {
    /// all, mod_add, needle, decimal_add, parens, memorise or lm.
    #[arg(long, default_value = "all")]
    pub task: String,
    /// Comma-separated widths (multiples of 4), e.g. 16,64,128 (default: the scale's).
    #[arg(long)]
    pub widths: Option<String>,
    /// tiny (seconds), small (the CPU reproduction, minutes) or paper (widths to 1024, p = 199: a GPU job).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    #[command(flatten)]
    pub run: RunArgs,
}

impl RandomTransformersArgs {
    pub fn run(self) -> Result<()> {
        let mut c = super::Config { device: self.run.device()?, seed: self.run.seed, ..Scaled::at(self.scale) }.select(&self.task)?;
        if let Some(w) = &self.widths {
            c = c.with_widths(w)?;
        }
        self.run.finish(NAME, |out| run(&c, out))
    }
}
