//! Embedding-only vs full training of one GPT-2-style model on one task.
//!
//! The model is the paper's: GPT-2 style (LayerNorm, learned positions, GELU MLP), 2 layers,
//! 4 heads, untied embeddings, N(0, 0.02) init (kiln's `Transformer::new`: residual projections
//! 0.02 / sqrt(2 n_layers), position embeddings N(0, 0.01), norms at identity, biases 0).
//! Embedding-only freezes every weight but the token embeddings, the position embeddings and the
//! output head with the engine's `Transformer::train_only` (requires_grad off; the trainer's
//! AdamW only ever sees the trainable list); full training trains everything. Both modes get the
//! same budget: the same steps, batch size, schedule and data order; only the peak learning rate
//! is set per mode (each mode's own best, as in the paper's per-setting tuning). AdamW with
//! beta2 = 0.98 and no weight decay, warmup + cosine schedule, gradients clipped to norm 1.

use super::tasks::{Examples, TaskData};
use crate::model::{Arch, Config as ModelConfig, Transformer};
use crate::tensor::Device;
use crate::train::{Batch, Dataset, Trainer, IGNORE};
use crate::{no_grad, Error, Result};
use serde::Serialize;

/// Which parameters train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// token embeddings, position embeddings and output head; the rest frozen at init
    EmbeddingOnly,
    /// every parameter
    Full,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::EmbeddingOnly => "embedding_only",
            Mode::Full => "full",
        }
    }
}

/// The parameters embedding-only training updates (HF GPT-2 names).
pub const EMBEDDING_PARAMS: [&str; 3] = ["transformer.wte.weight", "transformer.wpe.weight", "lm_head.weight"];

/// The optimisation budget of one (task, width, mode) run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Budget {
    pub steps: usize,
    pub batch_size: usize,
    /// peak AdamW learning rate, embedding-only and full
    pub lr_embedding: f64,
    pub lr_full: f64,
}

impl Budget {
    pub fn lr(&self, mode: Mode) -> f64 {
        match mode {
            Mode::EmbeddingOnly => self.lr_embedding,
            Mode::Full => self.lr_full,
        }
    }
}

/// The paper's model shape at width `width` for `data`'s vocabulary and length.
pub fn model_config(data: &TaskData, width: usize, seed: u64) -> ModelConfig {
    let mut mc = ModelConfig::tiny(Arch::Gpt2, data.vocab_size);
    (mc.d_model, mc.n_layers, mc.n_heads, mc.n_kv_heads) = (width, 2, 4, None);
    (mc.max_seq_len, mc.tie_embeddings, mc.seed) = (data.seq_len, false, seed);
    mc
}

/// A fresh model with `mode`'s parameters trainable and every other one frozen.
pub fn build_model(data: &TaskData, width: usize, mode: Mode, seed: u64) -> Result<Transformer> {
    if width == 0 || width % 4 != 0 {
        return Err(Error::Msg(format!("random-transformers: width {width} must be a positive multiple of 4 (4 heads)")));
    }
    let model = Transformer::new(model_config(data, width, seed))?;
    if mode == Mode::EmbeddingOnly {
        model.train_only(&EMBEDDING_PARAMS)?;
    }
    Ok(model)
}

/// Trainable parameters by hand: embedding-only = V C (wte) + T C (wpe) + C V (head).
pub fn embedding_param_count(vocab: usize, seq_len: usize, width: usize) -> usize {
    vocab * width + seq_len * width + width * vocab
}

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct RunStats {
    pub trainable_params: usize,
    pub total_params: usize,
    /// exact match (every answer token right) on the test split; for `lm`, the share of test
    /// tokens whose argmax is the next token (the source allows at most `LM_PROBS[0]`)
    pub accuracy: f64,
    /// the same on (up to 2048 of) the training examples
    pub train_accuracy: f64,
    /// `lm` only: held-out cross-entropy in bits per token
    pub test_bits: Option<f64>,
    /// mean training loss over the last 5% of steps (nats per answer token)
    pub final_loss: f64,
    pub skipped_steps: usize,
    pub seconds: f64,
}

/// Train a fresh model on `data` in `mode` for `budget` on `device`; returns the trained model and its stats.
/// `label` names the run on the progress bar (shown only when stderr is a terminal).
pub fn train_run(data: &TaskData, width: usize, mode: Mode, budget: &Budget, seed: u64, device: Device, label: &str) -> Result<(Transformer, RunStats)> {
    let start = std::time::Instant::now();
    let model = build_model(data, width, mode, seed)?;
    model.to_device(device)?;
    let total_params = model.param_count();
    let tc = crate::methods::small_model_recipe(budget.steps, budget.batch_size, budget.lr(mode), true, seed);
    let mut trainer = Trainer::new(model, tc, data.train.len())?;
    let trainable_params = trainer.params().iter().map(|(_, p)| p.elem_count()).sum();
    let (_, final_loss) = trainer.run(&data.train, budget.steps, label, &mut |_, _| Ok(false))?;
    let model = trainer.model.clone();
    let (accuracy, train_accuracy, test_bits) = if data.name == "lm" {
        let test = crate::train::evaluate(&model, &data.test, 256, 0)?;
        let train = crate::train::evaluate(&model, &data.train, 256, 8)?;
        (test.accuracy, train.accuracy, Some(test.loss / std::f64::consts::LN_2))
    } else {
        (exact_match(&model, &data.test, 256, usize::MAX)?, exact_match(&model, &data.train, 256, 2048)?, None)
    };
    let stats = RunStats {
        trainable_params,
        total_params,
        accuracy,
        train_accuracy,
        test_bits,
        final_loss,
        skipped_steps: trainer.skipped,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((model, stats))
}

/// Fraction of the first `limit` examples whose every answer token is the argmax prediction.
/// Teacher-forced, which equals greedy decoding's exact match: if every answer position's argmax
/// is right, greedy decoding writes exactly the answer, and the first wrong argmax breaks both.
pub fn exact_match(model: &Transformer, data: &Examples, batch_size: usize, limit: usize) -> Result<f64> {
    let _ng = no_grad();
    let n = data.len().min(limit);
    if n == 0 {
        return Err(Error::Msg("random-transformers: no examples to score".into()));
    }
    let mut correct = 0usize;
    for start in (0..n).step_by(batch_size.max(1)) {
        let idx: Vec<usize> = (start..(start + batch_size).min(n)).collect();
        let batch = Batch::gather(data, &idx)?;
        let logits = model.forward(&batch.ids.to_device(model.device())?, 0, None)?; // (B, T, V)
        let pred = logits.argmax(-1, false)?.to_vec_u32()?; // (B, T)
        let targets = batch.targets.to_vec_u32()?; // (B, T)
        let t = targets.len() / idx.len();
        correct += (0..idx.len())
            .filter(|&b| (0..t).all(|j| targets[b * t + j] == IGNORE || targets[b * t + j] == pred[b * t + j]))
            .count();
    }
    Ok(correct as f64 / n as f64)
}

