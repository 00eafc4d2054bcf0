//! The `kiln random-transformers` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{random_transformers_config, Scale};
use crate::report::RunDir;
use crate::tensor::Device;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RandomTransformersArgs {
    /// all, mod_add, needle, decimal_add, parens or memorise.
    #[arg(long, default_value = "all")]
    pub task: String,
    /// Comma-separated widths (multiples of 4), e.g. 16,64,128 (default: the scale's).
    #[arg(long)]
    pub widths: Option<String>,
    /// tiny (seconds), small (the CPU reproduction, minutes) or paper (widths to 1024, p = 199: a GPU job).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Output folder (default runs/random-transformers/<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to train: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed of the data, the split, the initialisation and the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl RandomTransformersArgs {
    pub fn run(self) -> Result<()> {
        let device = self.device.parse::<Device>()?;
        let mut c = super::Config { device, seed: self.seed, ..random_transformers_config(self.scale) }.select(&self.task)?;
        if let Some(w) = &self.widths {
            c = c.with_widths(w)?;
        }
        let out = self.out.unwrap_or_else(|| RunDir::default_path(NAME));
        let r = run(&c, &out)?;
        println!("{}\nreport: {}", r.headline, out.join("report.md").display());
        Ok(())
    }
}
