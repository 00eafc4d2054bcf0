//! The `kiln algae` command (parsed by clap in main.rs, run here).

use super::{run, ProposerKind, NAME};
use crate::methods::training::ModelArgs;
use crate::methods::{RunArgs, Scale, Scaled};
use crate::Result;

#[derive(clap::Args)]
pub struct AlgaeArgs {
    /// tiny (seconds), small (the CPU reproduction, 7 x 7 grids) or paper (9 x 9, 20 trials).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Trials per demo count (default: the scale's).
    #[arg(long)]
    pub trials: Option<usize>,
    /// enumerative (ALGAE with the enumerative proposer only) or lm (also with the kiln LM
    /// proposer, trained first, the two compared); default: the scale's (lm).
    #[arg(long)]
    pub proposer: Option<ProposerKind>,
    /// Features the LM proposes per round (default: the scale's).
    #[arg(long)]
    pub proposals: Option<usize>,
    /// Training steps of the proposer LM (default: the scale's).
    #[arg(long)]
    pub lm_steps: Option<usize>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

impl AlgaeArgs {
    pub fn run(self) -> Result<()> {
        let mut c = super::Config { seed: self.run.seed, device: self.run.device()?, ..Scaled::at(self.scale) };
        if let Some(dir) = self.model.model {
            c = c.from_checkpoint(dir);
        }
        if let Some(t) = self.trials {
            c.trials = t;
        }
        if let Some(p) = self.proposer {
            c.proposer = p;
        }
        if let Some(k) = self.proposals {
            c.lm.proposals = k;
        }
        if let Some(s) = self.lm_steps {
            c.lm.train.steps = s;
        }
        self.run.finish(NAME, |out| run(&c, out))
    }
}
