//! What a training run is, as JSON: `RunConfig { model, data, train }`, every struct with
//! unknown fields refused by name and every field documented. `kiln train --config FILE` reads
//! one of these; flags override single fields. A checkpoint's state.json embeds the RunConfig,
//! so `kiln eval` and `--resume` need nothing else.

use super::precision::Precision;
use super::data::{read_text, Dataset, TextDataset};
use super::tasks::{ModAdd, SeqDataset, SeqTask, Split};
use super::tokenizer::Tokenizer;
use crate::model::Config;
use crate::optim::Schedule;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The optimisation loop's settings. Every field has a default (`{}` is a valid config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimizer steps in total; a resumed run continues up to this step.
    pub steps: usize,
    /// Examples per micro-batch (B).
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed per optimizer step (each loss scaled by 1/n),
    /// so one step sees batch_size * grad_accum examples.
    pub grad_accum: usize,
    /// Peak learning rate (the schedule multiplies it).
    pub lr: f64,
    /// Learning-rate schedule: {"kind": "constant"}, {"kind": "warmup_cosine", "warmup", "total",
    /// "min_ratio"} or {"kind": "warmup_linear", "warmup", "total"}.
    pub schedule: Schedule,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW first-moment decay.
    pub beta1: f64,
    /// AdamW second-moment decay.
    pub beta2: f64,
    /// AdamW epsilon.
    pub eps: f64,
    /// Clip the global gradient norm to this; null = no clipping (the norm is still logged).
    pub clip_grad_norm: Option<f64>,
    /// Seed of the data order (a permutation per epoch keyed by (seed, epoch)).
    pub seed: u64,
    /// Write a train line to metrics.jsonl every this many steps (and on the last step).
    pub log_every: usize,
    /// Evaluate on the held-out set every this many steps; 0 = only at the end.
    pub eval_every: usize,
    /// At most this many batches per evaluation (in a fixed order); 0 = the whole held-out set.
    pub eval_batches: usize,
    /// Write a checkpoint every this many steps; 0 = none on the way (see `save_final`).
    pub checkpoint_every: usize,
    /// Also write a checkpoint after the last step.
    pub save_final: bool,
    /// Keep only the newest this many checkpoints; 0 = keep all.
    pub keep_checkpoints: usize,
    /// Stop with an error after this many non-finite (NaN/Inf loss or grad norm) steps in a
    /// row; each such step is skipped (no update) and counted.
    pub max_bad_steps_in_a_row: usize,
    /// Show a progress bar (only ever when stderr is a terminal).
    pub progress: bool,
    /// FOR TESTS: steps (1-based, as in metrics.jsonl) whose loss is replaced by NaN, to
    /// exercise the skip-and-stop logic.
    pub inject_nan_at_steps: Vec<usize>,
    /// An HF model directory whose weights a fresh run starts from (the `model` section must be
    /// its config.json, as `kiln train --model DIR` writes it; LoRA adapters on top start fresh),
    /// whose tokenizer.json tokenizes `"tokenizer": "hf"` text data, and next to whose run a
    /// PEFT adapter is saved (OUT/adapter) when the model has LoRA. null: random init.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Precision of the forward and backward passes: "f32", or "bf16" (CUDA only: bf16 weights
    /// and activations, f32 master weights, optimizer state and loss; see train/precision.rs).
    /// Written out only when not f32, so an f32 run's config.json and state.json are unchanged.
    #[serde(skip_serializing_if = "Precision::is_f32")]
    pub dtype: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 1000,
            batch_size: 32,
            grad_accum: 1,
            lr: 1e-3,
            schedule: Schedule::Constant,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            clip_grad_norm: Some(1.0),
            seed: 0,
            log_every: 10,
            eval_every: 0,
            eval_batches: 0,
            checkpoint_every: 0,
            save_final: true,
            keep_checkpoints: 3,
            max_bad_steps_in_a_row: 5,
            progress: true,
            inject_nan_at_steps: Vec::new(),
            init_from: None,
            dtype: Precision::F32,
        }
    }
}

impl TrainConfig {
    /// Every constraint, with the offending field named.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::Msg(format!("train config field `{field}`: {why}")));
        for (field, v) in [("steps", self.steps), ("batch_size", self.batch_size), ("grad_accum", self.grad_accum), ("log_every", self.log_every), ("max_bad_steps_in_a_row", self.max_bad_steps_in_a_row)] {
            if v == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("{} must be positive", self.lr));
        }
        for (field, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(field, format!("{b} must be in [0, 1)"));
            }
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return bad("eps", format!("{} must be positive", self.eps));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", format!("{} must be >= 0", self.weight_decay));
        }
        if let Some(c) = self.clip_grad_norm {
            if !(c > 0.0 && c.is_finite()) {
                return bad("clip_grad_norm", format!("{c} must be positive (or null for none)"));
            }
        }
        if let Schedule::WarmupCosine { min_ratio, .. } = self.schedule {
            if !(0.0..=1.0).contains(&min_ratio) {
                return bad("schedule.min_ratio", format!("{min_ratio} must be in [0, 1]"));
            }
        }
        Ok(())
    }
}

/// Which tokenizer a text data set uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextTokenizer {
    Byte,
    Char,
    /// the tokenizer.json of `train.init_from` (an HF model directory)
    Hf,
}

fn default_eval_fraction() -> f64 {
    0.1
}
fn default_train_fraction() -> f64 {
    0.9
}

/// The data of a run. `{"kind": "text", ...}`, `{"kind": "mod_add", ...}` or a sequence task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// Language modelling on a UTF-8 text file (null path = the built-in demo corpus): windows
    /// of seq_len + 1 tokens; the last `eval_fraction` of the windows are held out.
    Text {
        #[serde(default)]
        path: Option<PathBuf>,
        tokenizer: TextTokenizer,
        seq_len: usize,
        #[serde(default = "default_eval_fraction")]
        eval_fraction: f64,
    },
    /// "a + b = c (mod p)" over all p^2 pairs, split train / held-out by a hash of (a, b).
    ModAdd {
        p: u32,
        #[serde(default = "default_train_fraction")]
        train_fraction: f64,
        /// seed of the split (not of the data order)
        #[serde(default)]
        seed: u64,
    },
    /// Copy / reverse / sort `len` symbols out of `n_symbols`; `n_train` and `n_eval` examples.
    Seq {
        task: SeqTask,
        len: usize,
        n_symbols: u32,
        n_train: usize,
        n_eval: usize,
        #[serde(default)]
        seed: u64,
    },
}

/// A data spec made real: its tokenizer, its train and held-out sets, and the sequence length.
pub struct Data {
    pub tokenizer: Tokenizer,
    pub train: Box<dyn Dataset>,
    pub eval: Box<dyn Dataset>,
    /// T of every example
    pub seq_len: usize,
}

impl DataSpec {
    /// Build the data sets. `tokenizer` (from a checkpoint) replaces the one the spec would
    /// build, so a char vocabulary stays the one the model was trained with.
    pub fn load(&self, tokenizer: Option<&Tokenizer>) -> Result<Data> {
        match self {
            DataSpec::Text { path, tokenizer: kind, seq_len, eval_fraction } => {
                let (text, origin) = match path {
                    Some(p) => (read_text(p)?, p.display().to_string()),
                    None => (super::CORPUS.to_string(), "built-in corpus".to_string()),
                };
                let tok = match (tokenizer, kind) {
                    (Some(t), _) => t.clone(),
                    (None, TextTokenizer::Byte) => Tokenizer::Byte,
                    (None, TextTokenizer::Char) => Tokenizer::char_level(&text).map_err(|e| Error::File { path: origin.clone(), detail: e.to_string() })?,
                    (None, TextTokenizer::Hf) => return Err(Error::Msg("data tokenizer `hf` needs an HF model directory in `train.init_from` (kiln train --model DIR)".into())),
                };
                let (train, eval) = TextDataset::new(&text, &tok, *seq_len, &origin)?.split(*eval_fraction)?;
                Ok(Data { tokenizer: tok, train: Box::new(train), eval: Box::new(eval), seq_len: *seq_len })
            }
            DataSpec::ModAdd { p, train_fraction, seed } => Ok(Data {
                tokenizer: tokenizer.cloned().unwrap_or_else(|| ModAdd::tokenizer(*p)),
                train: Box::new(ModAdd::new(*p, *train_fraction, *seed, Split::Train)?),
                eval: Box::new(ModAdd::new(*p, *train_fraction, *seed, Split::Eval)?),
                seq_len: 4,
            }),
            DataSpec::Seq { task, len, n_symbols, n_train, n_eval, seed } => Ok(Data {
                tokenizer: tokenizer.cloned().unwrap_or_else(|| SeqDataset::tokenizer(*n_symbols)),
                train: Box::new(SeqDataset::new(*task, *len, *n_symbols, *n_train, *seed, Split::Train)?),
                eval: Box::new(SeqDataset::new(*task, *len, *n_symbols, *n_eval, *seed, Split::Eval)?),
                seq_len: 2 * len,
            }),
        }
    }
}

/// Everything `kiln train` needs: the model, the data and the loop. This one reaches 100%
/// held-out accuracy on modular addition mod 97 (911 unseen pairs) by step 300 of 500, in
/// under a minute on two CPU cores (release build):
/// ```json
/// {
///   "model": {"arch": "llama", "vocab_size": 99, "d_model": 128, "n_layers": 1, "n_heads": 4, "max_seq_len": 4},
///   "data": {"kind": "mod_add", "p": 97, "train_fraction": 0.9, "seed": 0},
///   "train": {"steps": 500, "batch_size": 512, "lr": 1e-3, "weight_decay": 1.0, "beta2": 0.98,
///             "schedule": {"kind": "warmup_cosine", "warmup": 50, "total": 500, "min_ratio": 0.1},
///             "log_every": 50, "eval_every": 100, "checkpoint_every": 250}
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub model: Config,
    pub data: DataSpec,
    #[serde(default)]
    pub train: TrainConfig,
}

impl RunConfig {
    /// A run config for fine-tuning the HF model in `dir`: the file's `model` section (if any) is
    /// replaced by the one config.json describes, with `lora` on top; `train.init_from` is set to
    /// `dir`; text data is tokenized with the model's tokenizer.json.
    pub fn from_json_for_hf(text: &str, origin: &str, dir: &std::path::Path, lora: Option<crate::nn::LoraConfig>) -> Result<RunConfig> {
        let err = |detail: String| Error::File { path: origin.into(), detail };
        let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| err(format!("bad run config: {e}")))?;
        let obj = v.as_object_mut().ok_or_else(|| err("bad run config: expected a JSON object".into()))?;
        let (mut model, _) = crate::io::hf::read_config(dir)?;
        model.lora = lora;
        obj.insert("model".into(), serde_json::to_value(&model).map_err(|e| err(e.to_string()))?);
        let train = obj.entry("train").or_insert_with(|| serde_json::json!({}));
        if let Some(t) = train.as_object_mut() {
            t.insert("init_from".into(), serde_json::json!(dir));
        }
        if let Some(data) = obj.get_mut("data").and_then(|d| d.as_object_mut()) {
            if data.get("kind").and_then(|k| k.as_str()) == Some("text") {
                data.insert("tokenizer".into(), serde_json::json!("hf"));
            }
        }
        Self::from_json(&v.to_string(), origin)
    }

    /// The tokenizer a fresh run's text data uses when it comes from the HF model (None otherwise).
    pub fn hf_tokenizer(&self) -> Option<Tokenizer> {
        match (&self.data, &self.train.init_from) {
            (DataSpec::Text { tokenizer: TextTokenizer::Hf, .. }, Some(dir)) => Some(Tokenizer::Hf { path: dir.join("tokenizer.json") }),
            _ => None,
        }
    }

    /// Parse and validate; `origin` (a path) is named in every error.
    pub fn from_json(text: &str, origin: &str) -> Result<RunConfig> {
        let cfg: RunConfig = parse_json(text).map_err(|e| Error::File { path: origin.into(), detail: format!("bad run config: {e}") })?;
        cfg.validate().map_err(|e| Error::File { path: origin.into(), detail: e.to_string() })?;
        Ok(cfg)
    }

    /// The model and train configs' own checks, plus that they fit the data: the vocabulary
    /// covers the tokenizer's and max_seq_len covers T.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()
    }

    /// Check the model against built data (vocab and length), naming the field to change.
    pub fn check_fits(&self, data: &Data) -> Result<()> {
        let v = data.tokenizer.vocab_size();
        if self.model.vocab_size < v {
            return Err(Error::Msg(format!("config field `model.vocab_size`: {} is smaller than the tokenizer's vocabulary of {v}", self.model.vocab_size)));
        }
        if self.model.max_seq_len < data.seq_len {
            return Err(Error::Msg(format!("config field `model.max_seq_len`: {} is shorter than the data's sequence length {}", self.model.max_seq_len, data.seq_len)));
        }
        Ok(())
    }
}

/// Deserialize JSON, naming the field at fault (`train.lr: invalid type ...`): serde_json alone
/// reports only a line and column for a wrong type.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| match e.path().to_string() {
        p if p == "." || p.is_empty() => e.inner().to_string(),
        p => format!("field `{p}`: {}", e.inner()),
    })
}
