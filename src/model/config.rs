//! Model configuration: the shape of a decoder and its flavour. Llama-style (RMSNorm, RoPE,
//! SwiGLU, grouped-query attention) or GPT-2-style (LayerNorm, learned positions, GELU MLP).
//! Read from JSON with unknown fields refused by name; `validate` names the bad field.

use crate::nn::{AttnKind, LoraConfig};
pub use crate::ops::rope::RopeScaling;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Gpt2,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub arch: Arch,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// grouped-query heads (Llama); defaults to n_heads
    #[serde(default)]
    pub n_kv_heads: Option<usize>,
    /// MLP hidden width; defaults to 4 d_model (GPT-2) or 8/3 d_model rounded to 8 (Llama)
    #[serde(default)]
    pub d_ff: Option<usize>,
    pub max_seq_len: usize,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// long-context RoPE scaling (Llama 3.x: `llama3`); none = plain RoPE
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    /// biases on the q, k and v projections (Qwen2); Llama has none
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub qkv_bias: bool,
    #[serde(default)]
    pub tie_embeddings: bool,
    #[serde(default = "default_attn")]
    pub attention: AttnKind,
    #[serde(default)]
    pub lora: Option<LoraConfig>,
    #[serde(default)]
    pub seed: u64,
}

fn default_theta() -> f64 {
    10_000.0
}
fn default_eps() -> f64 {
    1e-5
}
fn default_attn() -> AttnKind {
    AttnKind::Softmax
}

impl Config {
    /// A tiny model for tests and demos.
    pub fn tiny(arch: Arch, vocab_size: usize) -> Config {
        Config {
            arch,
            vocab_size,
            d_model: 32,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: if arch == Arch::Llama { Some(2) } else { None },
            d_ff: None,
            max_seq_len: 64,
            rope_theta: default_theta(),
            rope_scaling: None,
            norm_eps: default_eps(),
            qkv_bias: false,
            tie_embeddings: arch == Arch::Gpt2,
            attention: AttnKind::Softmax,
            lora: None,
            seed: 0,
        }
    }
    pub fn kv_heads(&self) -> usize {
        self.n_kv_heads.unwrap_or(self.n_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads.max(1)
    }
    pub fn ff(&self) -> usize {
        self.d_ff.unwrap_or(match self.arch {
            Arch::Gpt2 => 4 * self.d_model,
            Arch::Llama => (8 * self.d_model / 3).div_ceil(8) * 8,
        })
    }

    /// RoPE frequencies (D/2) for this config, scaling included.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        crate::ops::rope::rope_inv_freq_scaled(self.head_dim(), self.rope_theta, self.rope_scaling.as_ref())
    }

    pub fn from_json(text: &str, origin: &str) -> Result<Config> {
        let cfg: Config = serde_json::from_str(text).map_err(|e| Error::File { path: origin.into(), detail: format!("bad model config: {e}") })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every constraint, with the offending field named.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::Msg(format!("config field `{field}`: {why}")));
        for (field, v) in [("vocab_size", self.vocab_size), ("d_model", self.d_model), ("n_layers", self.n_layers), ("n_heads", self.n_heads), ("max_seq_len", self.max_seq_len)] {
            if v == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        if self.d_model % self.n_heads != 0 {
            return bad("n_heads", format!("{} does not divide d_model = {}", self.n_heads, self.d_model));
        }
        let kv = self.kv_heads();
        if kv == 0 || self.n_heads % kv != 0 {
            return bad("n_kv_heads", format!("{kv} must divide n_heads = {}", self.n_heads));
        }
        if self.arch == Arch::Llama && self.head_dim() % 2 != 0 {
            return bad("n_heads", format!("RoPE needs an even head dim, d_model / n_heads = {}", self.head_dim()));
        }
        if self.attention == AttnKind::Linear && kv != self.n_heads {
            return bad("attention", "linear attention needs n_kv_heads == n_heads".into());
        }
        if !(self.norm_eps > 0.0) {
            return bad("norm_eps", format!("{} must be positive", self.norm_eps));
        }
        if !(self.rope_theta > 0.0) {
            return bad("rope_theta", format!("{} must be positive", self.rope_theta));
        }
        match &self.rope_scaling {
            Some(RopeScaling::Linear { factor }) if !(*factor >= 1.0) => return bad("rope_scaling.factor", format!("{factor} must be >= 1")),
            Some(RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }) => {
                if !(*factor >= 1.0) {
                    return bad("rope_scaling.factor", format!("{factor} must be >= 1"));
                }
                if !(*low_freq_factor > 0.0 && high_freq_factor > low_freq_factor) {
                    return bad("rope_scaling.high_freq_factor", format!("{high_freq_factor} must exceed low_freq_factor {low_freq_factor} > 0"));
                }
                if *original_max_position_embeddings == 0 {
                    return bad("rope_scaling.original_max_position_embeddings", "must be at least 1".into());
                }
            }
            _ => {}
        }
        if self.qkv_bias && self.arch != Arch::Llama {
            return bad("qkv_bias", "only Llama-style models have separate q, k, v projections".into());
        }
        if let Some(l) = &self.lora {
            if l.rank == 0 {
                return bad("lora.rank", "must be at least 1".into());
            }
        }
        Ok(())
    }
}
