//! The `kiln misinfo-eval` command (parsed by clap in main.rs, run here).

use super::{run, NAME};
use crate::methods::training::ModelArgs;
use crate::methods::{RunArgs, Scale, Scaled};
use crate::Result;

#[derive(clap::Args)]
pub struct MisinfoEvalArgs {
    /// tiny (seconds), small (the CPU reproduction) or paper (120 entities, width 256: a GPU job).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Training steps of the explainer (default: the scale's); fewer steps, less faithful explanations.
    #[arg(long)]
    pub explainer_steps: Option<usize>,
    /// Training steps of the users model (default: the scale's).
    #[arg(long)]
    pub users_steps: Option<usize>,
    /// Share of the explainer's training articles that repeat the rumour (default 0.2).
    #[arg(long)]
    pub article_noise: Option<f64>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

impl MisinfoEvalArgs {
    pub fn run(self) -> Result<()> {
        let mut c = super::Config { device: self.run.device()?, seed: self.run.seed, ..Scaled::at(self.scale) };
        if let Some(dir) = self.model.model {
            c = c.from_checkpoint(dir);
        }
        if let Some(s) = self.explainer_steps {
            c.explainer.steps = s;
        }
        if let Some(s) = self.users_steps {
            c.users.steps = s;
        }
        if let Some(n) = self.article_noise {
            if !(0.0..=1.0).contains(&n) {
                return Err(crate::Error::Msg(format!("misinfo-eval: --article-noise {n} is not a share in [0, 1]")));
            }
            c.corpus.article_noise = n;
        }
        self.run.finish(NAME, |out| run(&c, out))
    }
}
