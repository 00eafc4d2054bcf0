//! Training: tokenizers, datasets (a text file, generated algorithmic tasks), the Trainer loop
//! (AdamW + schedule + clipping + gradient accumulation, NaN/Inf steps skipped and counted),
//! the eval loop, JSONL metrics, progress, and atomic checkpoints that resume bit for bit.
//!
//! Layout:
//!   tokenizer.rs   byte / char / symbol tokenizers, saved with every checkpoint
//!   data.rs        Dataset trait, Example (ids + masked targets), Batch (B, T), the shuffled
//!                  index stream and its cursor, the text data set
//!   tasks.rs       modular addition, copy, reverse, sort
//!   config.rs      RunConfig { model, data, train } as JSON (what `kiln train --config` reads)
//!   trainer.rs     Trainer::step, evaluate
//!   precision.rs   --dtype f32 | bf16: bf16 working copies of f32 master weights
//!   checkpoint.rs  step-NNNNNN/ {model,optimizer}.safetensors + state.json; strict loading
//!   run.rs         run_training (the `kiln train` body), run_eval, load_checkpoint
//!
//! A minimal run (what `kiln train` does with a config file and an output directory):
//! ```no_run
//! # fn main() -> kiln::Result<()> {
//! let cfg = kiln::train::RunConfig::from_json(&std::fs::read_to_string("run.json")?, "run.json")?;
//! let summary = kiln::train::run_training(&cfg, std::path::Path::new("runs/x"), None)?;
//! println!("held-out accuracy {:.3}", summary.eval.accuracy);
//! # Ok(()) }
//! ```

pub mod checkpoint;
mod config;
mod data;
mod precision;
mod run;
mod tasks;
mod tokenizer;
mod trainer;

pub use config::{parse_json, Data, DataSpec, RunConfig, TextTokenizer, TrainConfig};
pub use data::{epoch_permutation, read_text, Batch, Cursor, Dataset, Example, Examples, Sampler, TextDataset, IGNORE};
pub use precision::Precision;
pub use run::{load_checkpoint, run_eval, run_training, run_training_on, RunSummary};
pub use tasks::{ModAdd, SeqDataset, SeqTask, Split};
pub use tokenizer::Tokenizer;
pub use trainer::{evaluate, EvalResult, StepReport, Trainer};

/// A short built-in text (about 3 KB of plain English prose, written for kiln) for demos and
/// tests: `{"kind": "text", "path": null, ...}` trains on it.
pub const CORPUS: &str = include_str!("corpus.txt");
