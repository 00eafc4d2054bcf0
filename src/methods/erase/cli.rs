//! The `kiln erase` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::{RunArgs, Scale, Scaled};
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
    /// Training steps of the LM reader (default: the scale's, 5000 at small).
    #[arg(long, value_name = "N")]
    pub reader_steps: Option<usize>,
    /// Start the LM reader from this HF Llama checkpoint directory (config.json, tokenizer.json,
    /// safetensors), its vocabulary cut to the reader's words, instead of training one from scratch.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl EraseArgs {
    pub fn run(self) -> Result<()> {
        let mut c = super::Config { device: self.run.device()?, seed: self.run.seed, ..Scaled::at(self.scale) };
        if let Some(t) = self.threshold {
            c.threshold = t;
        }
        if let Some(n) = self.reader_steps {
            c.reader.steps = n;
        }
        c.model = self.model;
        self.run.finish(NAME, |out| run(&c, out))
    }
}
