//! The `kiln erase` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{erase_config, Scale};
use crate::report::RunDir;
use crate::tensor::Device;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct EraseArgs {
    /// tiny (seconds), small (the CPU reproduction) or paper (100 entities, 40 steps).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// ERASE's relatedness threshold (cosine), default 0.25.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Output folder (default runs/erase/<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the retrieval matmuls run: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed of the worlds and streams.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl EraseArgs {
    pub fn run(self) -> Result<()> {
        let device = self.device.parse::<Device>()?;
        let mut c = super::Config { device, seed: self.seed, ..erase_config(self.scale) };
        if let Some(t) = self.threshold {
            c.threshold = t;
        }
        let out = self.out.unwrap_or_else(|| RunDir::default_path(NAME));
        let r = run(&c, &out)?;
        println!("{}\nreport: {}", r.headline, out.join("report.md").display());
        Ok(())
    }
}
