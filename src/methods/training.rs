//! What the model-training methods share: a phase's budget, what it ended with, training one
//! phase with the small-model recipe, the GPT-2-style model they build, and the model they start
//! from instead with `--model DIR` (an HF checkpoint cut to the method's words).

use crate::model::{Arch, Config as ModelConfig, Transformer};
use crate::train::{Examples, Trainer};
use crate::io::hf::{load_with_vocab, VocabCut};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use serde::Serialize;

/// One training phase's budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phase {
    pub steps: usize,
    pub batch_size: usize,
    /// peak AdamW learning rate
    pub lr: f64,
}

/// What one training phase ended with.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseStats {
    /// steps taken (fewer than the phase's when it stopped early)
    pub steps: usize,
    /// mean loss over the last 5% of the phase's steps (nats per target token; NaN when it stopped before them)
    pub final_loss: f64,
    pub skipped_steps: usize,
    pub seconds: f64,
}

/// Train `model` on `data` for `phase` with `small_model_recipe` (AdamW, beta2 0.98, no decay,
/// clip 1). `cosine` picks warmup + cosine (pretraining) over a constant rate (a plain
/// fine-tune). `watch(step, model)` runs before the first step (step 0) and after every step;
/// training stops early once it returns true.
pub fn train(model: Transformer, data: &Examples, phase: &Phase, cosine: bool, seed: u64, label: &str, watch: &mut dyn FnMut(usize, &Transformer) -> Result<bool>) -> Result<(Transformer, PhaseStats)> {
    let start = std::time::Instant::now();
    let tc = super::small_model_recipe(phase.steps, phase.batch_size, phase.lr, cosine, seed);
    let mut trainer = Trainer::new(model, tc, data.0.len())?;
    let (steps, final_loss) = trainer.run(data, phase.steps, label, watch)?;
    let stats = PhaseStats { steps, final_loss, skipped_steps: trainer.skipped, seconds: start.elapsed().as_secs_f64() };
    Ok((trainer.model.clone(), stats))
}

/// A GPT-2-style model config: untied embeddings, `width` x `layers` with `heads` heads.
pub fn gpt2_config(vocab: usize, width: usize, layers: usize, heads: usize, max_seq_len: usize, seed: u64) -> ModelConfig {
    let mut mc = ModelConfig::tiny(Arch::Gpt2, vocab);
    (mc.d_model, mc.n_layers, mc.n_heads, mc.n_kv_heads) = (width, layers, heads, None);
    (mc.max_seq_len, mc.tie_embeddings, mc.seed) = (max_seq_len, false, seed);
    mc
}

/// `--model DIR`, flattened into the command of every method that trains a language model.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ModelArgs {
    /// Start from this Llama-family HF checkpoint (config.json, safetensors, tokenizer.json)
    /// instead of a model trained from scratch: its vocabulary is cut to the method's words
    /// (src/io/hf/vocab.rs) and it is fine-tuned at lr 1e-4 unless a flag sets a rate. Real
    /// checkpoints are GPU jobs (--device cuda).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

/// The peak learning rate of a phase that trains a pretrained checkpoint (`--model DIR`).
pub const FINETUNE_LR: f64 = 1e-4;

/// The model a method starts from: `Transformer::new(scratch)`, or with `model_dir` (`--model
/// DIR`) the Llama-family HF checkpoint there, cut to the method's vocabulary: `words[i]` is
/// method token i's word (io/hf/vocab.rs). The checkpoint must cover scratch.max_seq_len
/// positions; the cut is returned for the report.
pub fn start_model(model_dir: Option<&Path>, words: &[String], scratch: ModelConfig) -> Result<(Transformer, Option<VocabCut>)> {
    let Some(dir) = model_dir else {
        return Ok((Transformer::new(scratch)?, None));
    };
    if words.len() != scratch.vocab_size {
        return Err(Error::Msg(format!("--model {}: the method names {} words for its {} tokens", dir.display(), words.len(), scratch.vocab_size)));
    }
    let (model, cut) = load_with_vocab(dir, words)?;
    if model.cfg.max_seq_len < scratch.max_seq_len {
        return Err(Error::Msg(format!("--model {}: {} positions, the method needs {}", dir.display(), model.cfg.max_seq_len, scratch.max_seq_len)));
    }
    Ok((model, Some(cut)))
}
