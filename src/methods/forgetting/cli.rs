//! The `kiln forgetting` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::training::ModelArgs;
use crate::methods::{RunArgs, Scale, Scaled};
use crate::Result;

#[derive(clap::Args)]
pub struct ForgettingArgs {
    /// all, or a comma-separated list of two or more of first, majority, compare, contains, max_bucket, facts.
    #[arg(long, default_value = "all")]
    pub tasks: String,
    /// tiny (seconds), small (the CPU reproduction, about 25 s) or paper (width 256, 4 blocks: a GPU job).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Model width (d_model; a multiple of the scale's head count), default: the scale's.
    #[arg(long)]
    pub width: Option<usize>,
    /// Most fine-tuning steps of each forgetting run (default: the scale's).
    #[arg(long)]
    pub forget_steps: Option<usize>,
    /// Learning rate of each forgetting run (default: the scale's).
    #[arg(long)]
    pub forget_lr: Option<f64>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

impl ForgettingArgs {
    pub fn run(self) -> Result<()> {
        let mut c = super::Config { device: self.run.device()?, seed: self.run.seed, ..Scaled::at(self.scale) }.select(&self.tasks)?;
        if let Some(dir) = self.model.model {
            c = c.from_checkpoint(dir);
        }
        if let Some(w) = self.width {
            c.width = w;
        }
        if let Some(s) = self.forget_steps {
            c.forget.steps = s;
        }
        if let Some(lr) = self.forget_lr {
            c.forget.lr = lr;
        }
        self.run.finish(NAME, |out| run(&c, out))
    }
}
