//! Linear layer y = x W (+ b), optionally with a LoRA adapter (Hu et al. 2021):
//! y = x W + s (x A) B (+ b), computed by the fused `Tensor::lora` op. A is initialised
//! uniform(+-1/sqrt(in)) like PEFT's default, B at zero, so a fresh adapter changes nothing.
//! Scale s = alpha / r, or alpha / sqrt(r) with rank-stabilised LoRA (Kalajdzievski 2023).
//! Adapters can be merged into W (W += s A B) and unmerged again, or swapped per task without
//! touching W.

use super::{Init, NamedParams};
use crate::tensor::{DType, Device, Tensor};
use crate::{no_grad, Error, Result};

/// Which linear modules get adapters and how they are scaled.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    /// alpha / sqrt(r) instead of alpha / r
    #[serde(default)]
    pub rslora: bool,
    /// Module short names: any of q, k, v, o, gate, up, down (Llama) or c_attn, c_proj, c_fc.
    pub targets: Vec<String>,
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        if self.rslora { self.alpha / (self.rank as f64).sqrt() } else { self.alpha / self.rank as f64 }
    }
}

/// A: (in, r), B: (r, out).
#[derive(Clone, Debug)]
pub struct LoraAdapter {
    pub a: Tensor,
    pub b: Tensor,
    pub scale: f64,
}

#[derive(Clone, Debug)]
pub struct Linear {
    /// (in, out)
    pub weight: Tensor,
    /// (out)
    pub bias: Option<Tensor>,
    pub lora: Option<LoraAdapter>,
    merged: bool,
}

impl Linear {
    pub fn new(init: &mut Init, d_in: usize, d_out: usize, bias: bool, std: f32) -> Result<Self> {
        let weight = init.normal(&[d_in, d_out], std)?;
        let bias = if bias { Some(Tensor::zeros([d_out], DType::F32, Device::Cpu)?) } else { None };
        Ok(Linear { weight, bias, lora: None, merged: false })
    }
    pub fn d_in(&self) -> usize {
        self.weight.dims()[0]
    }
    /// Is the adapter folded into `weight` (see `merge`)?
    pub fn is_merged(&self) -> bool {
        self.merged
    }
    pub fn d_out(&self) -> usize {
        self.weight.dims()[1]
    }

    /// x: (.., in) -> (.., out)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match (&self.lora, self.merged) {
            (Some(l), false) => Tensor::lora(x, &self.weight, &l.a, &l.b, l.scale)?,
            _ => x.matmul(&self.weight)?,
        };
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }

    /// Attach a fresh adapter (A random, B zero), replacing any existing one.
    pub fn add_lora(&mut self, init: &mut Init, cfg: &LoraConfig) -> Result<()> {
        if cfg.rank == 0 {
            return Err(Error::Msg("lora: rank must be at least 1".into()));
        }
        self.unmerge()?;
        let a = init.uniform(&[self.d_in(), cfg.rank], 1.0 / (self.d_in() as f32).sqrt())?.with_grad();
        let b = Tensor::zeros([cfg.rank, self.d_out()], self.weight.dtype(), self.weight.device())?.with_grad();
        self.lora = Some(LoraAdapter { a, b, scale: cfg.scale() });
        Ok(())
    }

    /// Swap in another adapter (e.g. another task's); returns the previous one.
    pub fn set_lora(&mut self, adapter: Option<LoraAdapter>) -> Result<Option<LoraAdapter>> {
        if let Some(a) = &adapter {
            if a.a.dims() != [self.d_in(), a.a.dims()[1]] || a.b.dims() != [a.a.dims()[1], self.d_out()] {
                return Err(Error::shape("set_lora", a.a.shape(), a.b.shape(), format!("adapter must be ({}, r) and (r, {})", self.d_in(), self.d_out())));
            }
        }
        self.unmerge()?;
        Ok(std::mem::replace(&mut self.lora, adapter))
    }

    /// W += s A B: inference without the extra rank-r work. Idempotent.
    pub fn merge(&mut self) -> Result<()> {
        self.fold(1.0, true)
    }
    /// W -= s A B: undo `merge`. Idempotent.
    pub fn unmerge(&mut self) -> Result<()> {
        self.fold(-1.0, false)
    }
    fn fold(&mut self, sign: f64, to: bool) -> Result<()> {
        let (Some(l), true) = (&self.lora, self.merged != to) else { return Ok(()) };
        let _ng = no_grad();
        let delta = l.a.matmul(&l.b)?.scale(sign * l.scale)?;
        self.weight.assign(&self.weight.add(&delta)?)?;
        self.merged = to;
        Ok(())
    }

    /// Parameters under `prefix` with HF names (weight, bias; lora_A / lora_B as PEFT names them).
    pub fn visit(&self, prefix: &str, out: &mut NamedParams) {
        out.push((format!("{prefix}.weight"), self.weight.clone()));
        if let Some(b) = &self.bias {
            out.push((format!("{prefix}.bias"), b.clone()));
        }
        if let Some(l) = &self.lora {
            out.push((format!("{prefix}.lora_A.weight"), l.a.clone()));
            out.push((format!("{prefix}.lora_B.weight"), l.b.clone()));
        }
    }
}
