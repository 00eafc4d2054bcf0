//! Mixed-precision training (`train.dtype`, `kiln train --dtype f32|bf16`), after Micikevicius
//! et al., "Mixed Precision Training" (2018), with bf16 in place of fp16: bf16 has f32's exponent
//! range, so no loss scaling is needed.
//!
//! f32 (default): the model's parameters are trained directly, in f32, on any device.
//!
//! bf16 (CUDA only; the CPU backend computes in f32/f64 and has no bf16 arithmetic):
//! - the Trainer's model holds the f32 MASTER weights; AdamW's m and v are f32 like them;
//! - each step casts every master to a bf16 WORKING copy (`Working::new`, one cast kernel per
//!   tensor: a detached leaf that keeps the master's requires_grad), and the forward and backward
//!   passes run on that copy: embeddings, matmuls, norms, RoPE, attention, SwiGLU/GELU and LoRA
//!   take bf16 operands and write bf16 results, accumulating in f32 inside the kernels;
//! - the logits (B, T, V) are cast to f32 before the cross-entropy (`Transformer::loss`), so the
//!   loss is an f32 mean (not rounded to bf16's 8 bits) and its gradient is cast back to bf16;
//! - the working copies' bf16 gradients are re-keyed to their masters (`Working::master_grads`);
//!   with grad_accum > 1 each micro-batch's gradients are cast to f32 before they are summed;
//! - the global gradient norm (and clipping) is computed from them as in f32 training (f64 sum);
//! - fused AdamW (`adamw_gbf16`, or `adamw_gf32` for summed gradients) reads the gradient as f32
//!   and updates the f32 masters and moments; the next step casts the updated masters again;
//! - checkpoints save the f32 masters and f32 moments: the same files as an f32 run, so a run
//!   resumes in either dtype; evaluation runs on the f32 masters (what `kiln eval` loads).

use crate::autograd::Grads;
use crate::model::Transformer;
use crate::nn::NamedParams;
use crate::tensor::{DType, Device, Tensor};
use crate::{no_grad, Error, Result};
use serde::{Deserialize, Serialize};

/// The element type a training step computes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// everything f32
    #[default]
    F32,
    /// bf16 weights and activations, f32 master weights, optimizer state and loss
    Bf16,
}

impl Precision {
    /// The dtype of the working weights and activations.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// Refuse a precision the device cannot compute in, naming both.
    pub fn check_device(self, device: Device) -> Result<()> {
        match (self, device) {
            (Precision::Bf16, Device::Cpu) => {
                Err(Error::Msg("--dtype bf16 needs --device cuda: the CPU backend computes in f32/f64 (train.dtype bf16 on cpu)".into()))
            }
            _ => Ok(()),
        }
    }

    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(Error::Msg(format!("unknown dtype `{s}` (expected f32 or bf16)"))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

/// One step's working model: the masters themselves (f32), or a bf16 copy of them.
pub(super) struct Working {
    /// None: f32, the forward runs on the masters
    copy: Option<Transformer>,
    /// (working tensor, master tensor) of every trainable parameter, in `params` order
    pairs: Vec<(Tensor, Tensor)>,
}

impl Working {
    /// Cast `masters` (f32) to `precision`; `params` are the masters' trainable parameters.
    pub fn new(masters: &Transformer, params: &NamedParams, precision: Precision) -> Result<Working> {
        if precision.is_f32() {
            return Ok(Working { copy: None, pairs: Vec::new() });
        }
        let _ng = no_grad();
        let copy = masters.to_dtype(precision.dtype())?; // every parameter: (same shape) f32 -> bf16
        let work = copy.trainable_params();
        if work.len() != params.len() || work.iter().zip(params).any(|((a, _), (b, _))| a != b) {
            return Err(Error::Msg("mixed precision: the working copy's trainable parameters differ from the masters'".into()));
        }
        let pairs = work.into_iter().zip(params).map(|((_, w), (_, m))| (w, m.clone())).collect();
        Ok(Working { copy: Some(copy), pairs })
    }

    /// The model the forward and backward passes run on.
    pub fn model<'a>(&'a self, masters: &'a Transformer) -> &'a Transformer {
        self.copy.as_ref().unwrap_or(masters)
    }

    /// One backward pass's gradients, keyed by the masters. bf16 gradients stay bf16, or become
    /// f32 when `to_f32` (they are about to be summed over micro-batches).
    pub fn master_grads(&self, mut grads: Grads, to_f32: bool) -> Result<Grads> {
        if self.copy.is_none() {
            return Ok(grads);
        }
        let _ng = no_grad();
        let mut out = Grads::default();
        for (w, m) in &self.pairs {
            if let Some(g) = grads.remove(w) {
                out.insert(m, if to_f32 { g.to_dtype(DType::F32)? } else { g });
            }
        }
        Ok(out)
    }
}
