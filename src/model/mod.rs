//! The decoder-only transformer every method trains, fine-tunes, probes and samples from.

mod config;
mod generate;
mod score;
mod transformer;

pub use config::{Arch, Config, RopeScaling};
pub use generate::{GenerateOptions, Generated};
pub use transformer::{glob_match, Block, Transformer};
