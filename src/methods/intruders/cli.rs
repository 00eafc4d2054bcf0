//! The `kiln intruders` subcommands (parsed by clap in main.rs, run here).

use super::{analyze_checkpoints, run, Config, NAME};
use crate::methods::{RunArgs, Scale};
use crate::report::RunDir;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum IntrudersCommand {
    /// Count intruder dimensions of a fine-tuned model against its base. Models are HF model
    /// directories or kiln checkpoints (a step-* folder or a run folder); `--adapter` adds a PEFT
    /// adapter to the tuned model (the base itself when --tuned is not given), merged at its
    /// scaling. Writes report.md, report.json and report-heatmap.png.
    Analyze {
        #[arg(long)]
        base: PathBuf,
        #[arg(long)]
        tuned: Option<PathBuf>,
        /// A PEFT adapter directory (adapter_config.json + adapter_model.safetensors).
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// Top-k singular vectors of each tuned matrix.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// The threshold printed in the summary line (all of 0.1..0.9 are in the report).
        #[arg(long, default_value_t = 0.5)]
        eps: f64,
        /// Output folder (default: a new UTC-timestamped folder under runs/intruders-analyze/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Pre-train, fine-tune with LoRA / rsLoRA / full, count intruders and scale them down.
    Experiment {
        /// tiny (seconds), small (the CPU reproduction, minutes) or paper (larger; hours on a CPU).
        #[arg(long, default_value = "small")]
        scale: Scale,
        #[command(flatten)]
        run: RunArgs,
    },
}

impl IntrudersCommand {
    pub fn run(self) -> Result<()> {
        match self {
            IntrudersCommand::Analyze { base, tuned, adapter, k, eps, out } => {
                let out = out.unwrap_or_else(|| RunDir::default_path("intruders-analyze"));
                let a = analyze_checkpoints(&base, tuned.as_deref(), adapter.as_deref(), k, &out)?;
                let key = super::analyze::eps_key(eps);
                let n = a.totals.get(&key).copied().ok_or_else(|| crate::Error::Msg(format!("intruders: --eps {eps} is not one of 0.1, 0.2, .., 0.9")))?;
                println!("{n} intruder dimension(s) at eps {key} over {} matrices (top-{k}); report: {}", a.matrices.len(), out.join("report.md").display());
                Ok(())
            }
            IntrudersCommand::Experiment { scale, run: args } => {
                let base = match scale {
                    Scale::Tiny => Config::tiny(),
                    Scale::Small => Config::small(),
                    Scale::Paper => Config::default(),
                };
                let cfg = Config { seed: args.seed, device: args.device()?, ..base };
                args.finish(NAME, |out| run(&cfg, out))
            }
        }
    }
}
