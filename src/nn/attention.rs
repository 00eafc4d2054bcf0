//! Multi-head causal self-attention, Llama-style (separate q/k/v/o projections, RoPE, grouped-
//! query heads) or GPT-2-style (fused c_attn projection with biases, learned positions outside).
//! Kind `softmax` uses the fused causal attention op; kind `linear` uses causal linear attention
//! (Katharopoulos et al. 2020, no feature map: o_t = q_t sum_{s<=t} k_s^T v_s, q scaled by
//! 1/sqrt(D)), whose decoding cache is the (D x D) state instead of every past key and value.

use super::{Linear, NamedParams};
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttnKind {
    Softmax,
    Linear,
}

#[derive(Clone, Debug)]
pub enum Qkv {
    /// Llama: q_proj (C, Hq D), k_proj and v_proj (C, Hkv D)
    Separate { q: Linear, k: Linear, v: Linear },
    /// GPT-2: c_attn (C, 3 C), outputs [q | k | v]
    Fused { c_attn: Linear },
}

#[derive(Clone, Debug)]
pub struct Attention {
    pub qkv: Qkv,
    /// o_proj / c_proj: (Hq D, C)
    pub out: Linear,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub kind: AttnKind,
    /// RoPE frequencies (D/2), None for GPT-2 (learned positions)
    pub rope: Option<Arc<Vec<f32>>>,
}

/// What one layer keeps between decoding steps.
#[derive(Clone, Debug, Default)]
pub enum KvCache {
    #[default]
    Empty,
    /// softmax attention: k, v (B, Hkv, T_past, D)
    Kv { k: Tensor, v: Tensor },
    /// linear attention: the running state (B, H, D, D)
    State(Tensor),
}

impl Attention {
    /// x: (B, T, C), positions: U32 (B, T) or (T) absolute positions -> (B, T, C).
    /// With a cache, x holds only the new tokens and the cache is extended in place.
    pub fn forward(&self, x: &Tensor, positions: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let &[b, t, _] = x.dims() else { return Err(Error::bad_shape("attention", x.shape(), "x must be (B, T, C)")) };
        let (q, k, v) = self.project(x)?;
        let o = self.mix(q, k, v, b, t, positions, cache)?;
        self.out.forward(&o)
    }

    /// A ragged batch: x (1, N, C) holds the new tokens of several independent sequences one
    /// after another, `segs[i]` = (first absolute position, token count) of sequence i, each with
    /// its own cache `caches[i]`. The projections run once over all N tokens (so stacked
    /// adapters can give each sequence its own), attention per sequence -> (1, N, C).
    pub fn forward_ragged(&self, x: &Tensor, segs: &[(usize, usize)], caches: &mut [KvCache]) -> Result<Tensor> {
        let n: usize = segs.iter().map(|s| s.1).sum();
        if x.rank() != 3 || x.dims()[0] != 1 || x.dims()[1] != n || caches.len() != segs.len() {
            return Err(Error::bad_shape("attention", x.shape(), format!("ragged x must be (1, {n}, C) with one cache per sequence ({} for {})", caches.len(), segs.len())));
        }
        let (q, k, v) = self.project(x)?;
        let mut outs = Vec::with_capacity(segs.len());
        let mut at = 0;
        for (&(pos0, t), cache) in segs.iter().zip(caches.iter_mut()) {
            let part = |y: &Tensor| y.narrow(1, at, t);
            let positions = Tensor::from_vec_u32((pos0 as u32..(pos0 + t) as u32).collect(), [t])?.to_device(x.device())?;
            outs.push(self.mix(part(&q)?, part(&k)?, part(&v)?, 1, t, &positions, Some(cache))?);
            at += t;
        }
        self.out.forward(&Tensor::concat(&outs, 1)?)
    }

    /// x: (B, T, C) -> q (B, T, Hq D), k and v (B, T, Hkv D)
    fn project(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (hq, hkv, d) = (self.n_heads, self.n_kv_heads, self.head_dim);
        Ok(match &self.qkv {
            Qkv::Separate { q, k, v } => (q.forward(x)?, k.forward(x)?, v.forward(x)?),
            // Three products against column slices of the fused weight: slicing the (C, 3 C)
            // weight copies little, where slicing the (B, T, 3 C) output copies activations and
            // its backward pads each slice's gradient back to full width.
            Qkv::Fused { c_attn } if c_attn.is_plain() => {
                let part = |start: usize, len: usize| -> Result<Tensor> {
                    let y = x.matmul(&c_attn.weight.narrow(1, start, len)?)?;
                    match &c_attn.bias {
                        Some(bias) => y.add(&bias.narrow(0, start, len)?),
                        None => Ok(y),
                    }
                };
                (part(0, hq * d)?, part(hq * d, hkv * d)?, part((hq + hkv) * d, hkv * d)?)
            }
            Qkv::Fused { c_attn } => {
                let qkv = c_attn.forward(x)?;
                (qkv.narrow(-1, 0, hq * d)?, qkv.narrow(-1, hq * d, hkv * d)?, qkv.narrow(-1, (hq + hkv) * d, hkv * d)?)
            }
        })
    }

    /// Rope, the cache and the attention itself: q (B, T, Hq D), k, v (B, T, Hkv D) ->
    /// (B, T, Hq D), before the output projection.
    #[allow(clippy::too_many_arguments)]
    fn mix(&self, q: Tensor, k: Tensor, v: Tensor, b: usize, t: usize, positions: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (hq, hkv, d) = (self.n_heads, self.n_kv_heads, self.head_dim);
        // (B, T, H D) -> (B, H, T, D)
        let heads = |y: Tensor, h: usize| y.reshape([b, t, h, d])?.permute(&[0, 2, 1, 3]);
        let (mut q, mut k, v) = (heads(q, hq)?, heads(k, hkv)?, heads(v, hkv)?);
        if let Some(inv_freq) = &self.rope {
            q = q.rope(positions, inv_freq.clone())?;
            k = k.rope(positions, inv_freq.clone())?;
        }
        let scale = 1.0 / (d as f64).sqrt();
        let o = match self.kind {
            AttnKind::Softmax => {
                let (k, v) = match cache {
                    None => (k, v),
                    Some(c) => {
                        let (k, v) = match std::mem::take(c) {
                            KvCache::Kv { k: pk, v: pv } => (Tensor::concat(&[pk, k], 2)?, Tensor::concat(&[pv, v], 2)?),
                            _ => (k, v),
                        };
                        *c = KvCache::Kv { k: k.clone(), v: v.clone() };
                        (k, v)
                    }
                };
                Tensor::attention(&q, &k, &v, scale)?
            }
            AttnKind::Linear => {
                if hq != hkv {
                    return Err(Error::Msg(format!("linear attention needs n_kv_heads == n_heads (got {hkv} and {hq})")));
                }
                let s0 = match cache.as_deref() {
                    Some(KvCache::State(s)) => Some(s.clone()),
                    _ => None,
                };
                let (o, s) = Tensor::linear_attention(&q.scale(scale)?, &k, &v, s0.as_ref(), true)?;
                if let Some(c) = cache {
                    *c = KvCache::State(s);
                }
                o
            }
        };
        // (B, H, T, D) -> (B, T, H D)
        o.permute(&[0, 2, 1, 3])?.reshape([b, t, hq * d])
    }

    /// The linear layers by their short names (for LoRA targeting).
    pub fn linears_mut(&mut self) -> Vec<(&'static str, &mut Linear)> {
        match &mut self.qkv {
            Qkv::Separate { q, k, v } => vec![("q", q), ("k", k), ("v", v), ("o", &mut self.out)],
            Qkv::Fused { c_attn } => vec![("c_attn", c_attn), ("c_proj", &mut self.out)],
        }
    }

    pub fn visit(&self, prefix: &str, out: &mut NamedParams) {
        match &self.qkv {
            Qkv::Separate { q, k, v } => {
                q.visit(&format!("{prefix}.q_proj"), out);
                k.visit(&format!("{prefix}.k_proj"), out);
                v.visit(&format!("{prefix}.v_proj"), out);
                self.out.visit(&format!("{prefix}.o_proj"), out);
            }
            Qkv::Fused { c_attn } => {
                c_attn.visit(&format!("{prefix}.c_attn"), out);
                self.out.visit(&format!("{prefix}.c_proj"), out);
            }
        }
    }
}
