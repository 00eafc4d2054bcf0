//! What the model-training methods share: a phase's budget, what it ended with, training one
//! phase with the small-model recipe, and the GPT-2-style model they build.

use crate::model::{Arch, Config as ModelConfig, Transformer};
use crate::train::{Examples, Trainer};
use crate::Result;
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
