//! The decoder-only transformer every method trains, fine-tunes, probes and samples from.

mod config;
mod generate;
mod score;
mod serve;
mod transformer;

pub use config::{Arch, Config, RopeScaling};
pub use generate::{GenerateOptions, Generated};
pub use serve::{Request, PREFILL_TOKENS};
pub use transformer::{glob_match, Block, Transformer};
