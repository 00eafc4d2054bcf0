//! The `kiln forgetting` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{forgetting_config, Scale};
use crate::report::RunDir;
use crate::tensor::Device;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ForgettingArgs {
    /// all, or a comma-separated list of two or more of first, majority, compare, contains, max_bucket.
    #[arg(long, default_value = "all")]
    pub tasks: String,
    /// tiny (seconds), small (the CPU reproduction, minutes) or paper (width 256, 4 blocks: a GPU job).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Model width (d_model; a multiple of the scale's head count), default: the scale's.
    #[arg(long)]
    pub width: Option<usize>,
    /// Fine-tuning steps of each forgetting run (default: the scale's).
    #[arg(long)]
    pub forget_steps: Option<usize>,
    /// Learning rate of each forgetting run (default: the scale's).
    #[arg(long)]
    pub forget_lr: Option<f64>,
    /// Output folder (default runs/forgetting/<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to train: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed of the data, the random labels, the initialisation and the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl ForgettingArgs {
    pub fn run(self) -> Result<()> {
        let device = self.device.parse::<Device>()?;
        let mut c = super::Config { device, seed: self.seed, ..forgetting_config(self.scale) }.select(&self.tasks)?;
        if let Some(w) = self.width {
            c.width = w;
        }
        if let Some(s) = self.forget_steps {
            c.forget.steps = s;
        }
        if let Some(lr) = self.forget_lr {
            c.forget.lr = lr;
        }
        let out = self.out.unwrap_or_else(|| RunDir::default_path(NAME));
        let r = run(&c, &out)?;
        println!("{}\nreport: {}", r.headline, out.join("report.md").display());
        Ok(())
    }
}
