//! The `kiln adaptive-compute` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::training::ModelArgs;
use crate::methods::{RunArgs, Scale, Scaled};
use crate::Result;

#[derive(clap::Args)]
pub struct AdaptiveComputeArgs {
    /// tiny (seconds), small (the CPU reproduction, about 40 s) or paper (6-digit addition, a width-256 decoder: a GPU job).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Samples drawn per query, also the most one query may get (default: the scale's).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Sampling temperature (default 1).
    #[arg(long)]
    pub temperature: Option<f32>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

impl AdaptiveComputeArgs {
    pub fn run(self) -> Result<()> {
        let mut c = super::Config { device: self.run.device()?, seed: self.run.seed, ..Scaled::at(self.scale) };
        if let Some(dir) = self.model.model {
            c = c.from_checkpoint(dir);
        }
        if let Some(s) = self.samples {
            c.samples = s;
            c.budgets.retain(|&b| b <= s);
        }
        if let Some(t) = self.temperature {
            c.temperature = t;
        }
        self.run.finish(NAME, |out| run(&c, out))
    }
}
