//! The `kiln adaptive-compute` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{adaptive_compute_config, Scale};
use crate::report::RunDir;
use crate::tensor::Device;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AdaptiveComputeArgs {
    /// tiny (seconds), small (the CPU reproduction, about a minute) or paper (6-digit addition, a width-256 decoder: a GPU job).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Samples drawn per query, also the most one query may get (default: the scale's).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Sampling temperature (default 1).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Output folder (default runs/adaptive-compute/<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to train and sample: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed of the queries, the initialisation, the data order and the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl AdaptiveComputeArgs {
    pub fn run(self) -> Result<()> {
        let device = self.device.parse::<Device>()?;
        let mut c = super::Config { device, seed: self.seed, ..adaptive_compute_config(self.scale) };
        if let Some(s) = self.samples {
            c.samples = s;
            c.budgets.retain(|&b| b <= s);
        }
        if let Some(t) = self.temperature {
            c.temperature = t;
        }
        let out = self.out.unwrap_or_else(|| RunDir::default_path(NAME));
        let r = run(&c, &out)?;
        println!("{}\nreport: {}", r.headline, out.join("report.md").display());
        Ok(())
    }
}
