//! Linear layer y = x W (+ b), optionally with a LoRA adapter (Hu et al. 2021):
//! y = x W + s (x A) B (+ b), computed by the fused `Tensor::lora` op. A is initialised
//! uniform(+-1/sqrt(in)) like PEFT's default, B at zero, so a fresh adapter changes nothing.
//! Scale s = alpha / r, or alpha / sqrt(r) with rank-stabilised LoRA (Kalajdzievski 2023).
//! Adapters can be merged into W (W += s A B) and unmerged again, or swapped per task without
//! touching W.
//! Serving many tasks at once (S-LoRA / Punica-style): `stack_adapters` gives a copy holding G
//! adapters stacked, A (G, in, r) and B (G, r, out); its forward runs the fused
//! `Tensor::lora_multi_adapter` op, each row of x with the adapter that the per-forward context
//! `adapter_rows` names for it (set by the caller around a forward; see model/serve.rs).

use super::{Init, NamedParams};
use crate::tensor::{DType, Device, Tensor};
use crate::{no_grad, Error, Result};
use std::cell::RefCell;
use std::sync::Arc;

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

/// G adapters stacked: A (G, in, r), B (G, r, out), one scale each.
#[derive(Clone, Debug)]
pub struct MultiLora {
    pub a: Tensor,
    pub b: Tensor,
    pub scales: Vec<f64>,
}

thread_local! {
    static ADAPTER_ROWS: RefCell<Option<Arc<[u32]>>> = const { RefCell::new(None) };
}

/// While the guard lives, every forward of a Linear with stacked adapters on this thread gives
/// row i of its input (rows = all dims but the last, flattened) the adapter `ids[i]`.
pub fn adapter_rows(ids: Arc<[u32]>) -> AdapterRowsGuard {
    AdapterRowsGuard(ADAPTER_ROWS.with(|c| c.replace(Some(ids))))
}

/// Restores the previous adapter selection when dropped.
pub struct AdapterRowsGuard(Option<Arc<[u32]>>);
impl Drop for AdapterRowsGuard {
    fn drop(&mut self) {
        ADAPTER_ROWS.with(|c| *c.borrow_mut() = self.0.take());
    }
}

#[derive(Clone, Debug)]
pub struct Linear {
    /// (in, out)
    pub weight: Tensor,
    /// (out)
    pub bias: Option<Tensor>,
    pub lora: Option<LoraAdapter>,
    /// stacked adapters of many tasks (`stack_adapters`), used instead of `lora`
    pub multi: Option<MultiLora>,
    merged: bool,
}

impl Linear {
    pub fn new(init: &mut Init, d_in: usize, d_out: usize, bias: bool, std: f32) -> Result<Self> {
        let weight = init.normal(&[d_in, d_out], std)?;
        let bias = if bias { Some(Tensor::zeros([d_out], DType::F32, Device::Cpu)?) } else { None };
        Ok(Linear { weight, bias, lora: None, multi: None, merged: false })
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

    /// Is the forward a plain x W (+ b): no unmerged or stacked adapter?
    pub fn is_plain(&self) -> bool {
        (self.lora.is_none() || self.merged) && self.multi.is_none()
    }

    /// x: (.., in) -> (.., out)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match (&self.multi, &self.lora, self.merged) {
            (Some(m), _, _) => {
                let ids = ADAPTER_ROWS.with(|c| c.borrow().clone()).ok_or_else(|| {
                    Error::Msg("linear: stacked adapters need each row's adapter id (nn::adapter_rows around the forward)".into())
                })?;
                Tensor::lora_multi_adapter(x, &self.weight, &m.a, &m.b, &ids, &m.scales)?
            }
            (None, Some(l), false) => Tensor::lora(x, &self.weight, &l.a, &l.b, l.scale)?,
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
        // (in, r) and (r, out), both on the weight's device
        let a = init.uniform(&[self.d_in(), cfg.rank], 1.0 / (self.d_in() as f32).sqrt())?.to_device(self.weight.device())?.with_grad();
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

    /// A copy of this layer (same W and bias, no adapter of its own) serving G = adapters.len()
    /// adapters at once: adapter g is `adapters[g]`, or a zero adapter (exactly x W) for None.
    /// All present adapters must have one rank and be unmerged. With no adapter present, a
    /// plain copy.
    pub fn stack_adapters(&self, adapters: &[Option<&LoraAdapter>]) -> Result<Linear> {
        let mut out = Linear { weight: self.weight.clone(), bias: self.bias.clone(), lora: None, multi: None, merged: false };
        if self.merged {
            return Err(Error::Msg("stack_adapters: the base layer has a merged adapter; unmerge it first".into()));
        }
        // rank and dtype of the first adapter; zero adapters are made to match it
        let Some((r, dt)) = adapters.iter().flatten().map(|l| (l.a.dims()[1], l.a.dtype())).next() else { return Ok(out) };
        let _ng = no_grad();
        let (k, m, dev) = (self.d_in(), self.d_out(), self.weight.device());
        let (mut a_parts, mut b_parts, mut scales) = (Vec::new(), Vec::new(), Vec::new());
        for l in adapters {
            match l {
                Some(l) => {
                    if l.a.dims() != [k, r] || l.b.dims() != [r, m] {
                        return Err(Error::shape("stack_adapters", l.a.shape(), l.b.shape(), format!("every adapter must be ({k}, {r}) and ({r}, {m})")));
                    }
                    a_parts.push(l.a.detach().to_device(dev)?.reshape([1, k, r])?);
                    b_parts.push(l.b.detach().to_device(dev)?.reshape([1, r, m])?);
                    scales.push(l.scale);
                }
                None => {
                    a_parts.push(Tensor::zeros([1, k, r], dt, dev)?);
                    b_parts.push(Tensor::zeros([1, r, m], dt, dev)?);
                    scales.push(0.0);
                }
            }
        }
        out.multi = Some(MultiLora { a: Tensor::concat(&a_parts, 0)?, b: Tensor::concat(&b_parts, 0)?, scales });
        Ok(out)
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
