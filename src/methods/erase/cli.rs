//! The `kiln erase` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{RunArgs, Scale, Scaled};
use crate::Result;

#[derive(clap::Args)]
pub struct EraseArgs {
    /// tiny (seconds), small (the CPU reproduction) or paper (100 entities, 40 steps).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// ERASE's relatedness threshold (cosine), default 0.25.
    #[arg(long)]
    pub threshold: Option<f32>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl EraseArgs {
    pub fn run(self) -> Result<()> {
        let mut c = super::Config { device: self.run.device()?, seed: self.run.seed, ..Scaled::at(self.scale) };
        if let Some(t) = self.threshold {
            c.threshold = t;
        }
        self.run.finish(NAME, |out| run(&c, out))
    }
}
