//! Causal softmax attention with grouped-query heads, at the Tensor level, as one fused op:
//! O = softmax(scale Q K^T + causal mask) V (Vaswani et al. 2017; GQA, Ainslie et al. 2023).
//! The (T, T) probabilities are not kept for the backward pass, which recomputes them. Forward,
//! backward and their formulas: backend/cpu/attention.rs (twin of kernels/attention.cu).
//! Legend: B batch, Hq query heads, Hkv key/value heads, Tq query time, Tk key time, D head dim.

use crate::autograd::Op;
use crate::backend::{self, AttnDims};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Check q (B, Hq, Tq, D), k = v (B, Hkv, Tk, D), Hq a multiple of Hkv, Tq <= Tk.
fn dims(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<AttnDims> {
    const OP: &str = "attention";
    for t in [q, k, v] {
        t.expect_float(OP)?;
        if t.dtype() != q.dtype() {
            return Err(Error::DTypeMismatch { op: OP, expected: q.dtype(), got: t.dtype() });
        }
    }
    let (&[b, hq, tq, d], &[bk, hkv, tk, dk]) = (q.dims(), k.dims()) else {
        return Err(Error::shape(OP, q.shape(), k.shape(), "q must be (B, Hq, Tq, D) and k, v (B, Hkv, Tk, D)"));
    };
    if v.shape() != k.shape() {
        return Err(Error::shape(OP, k.shape(), v.shape(), "k and v must have the same shape (B, Hkv, Tk, D)"));
    }
    if b != bk || d != dk {
        return Err(Error::shape(OP, q.shape(), k.shape(), "q and k must agree in batch B and head dim D"));
    }
    if hkv == 0 || hq % hkv != 0 {
        return Err(Error::shape(OP, q.shape(), k.shape(), format!("query heads Hq = {hq} must be a multiple of kv heads Hkv = {hkv}")));
    }
    if tq > tk {
        return Err(Error::shape(OP, q.shape(), k.shape(), format!("Tq = {tq} queries but only Tk = {tk} keys (need Tq <= Tk)")));
    }
    if !scale.is_finite() {
        return Err(Error::Msg(format!("{OP}: scale must be finite, got {scale}")));
    }
    Ok(AttnDims { b, hq, hkv, tq, tk, d, scale })
}

impl Tensor {
    /// q: (B, Hq, Tq, D), k, v: (B, Hkv, Tk, D) -> o (B, Hq, Tq, D). Causal: query i (at
    /// absolute position Tk - Tq + i) attends to keys 0..=Tk - Tq + i; query head h reads kv
    /// head h / (Hq / Hkv). Scores are scaled by `scale` (usually 1 / sqrt(D)).
    pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
        let dm = dims(q, k, v, scale)?;
        let s = backend::attention(&q.storage(), &k.storage(), &v.storage(), dm)?;
        Ok(Tensor::from_op(s, q.shape().clone(), Op::Attention { q: q.clone(), k: k.clone(), v: v.clone(), scale }))
    }
}

/// g: (B, Hq, Tq, D) -> [dq, dk, dv], shaped like q, k, v.
pub fn attention_backward(q: &Tensor, k: &Tensor, v: &Tensor, g: &Tensor, scale: f64) -> Result<Vec<Option<Tensor>>> {
    let dm = dims(q, k, v, scale)?;
    let grads = backend::attention_backward(&q.storage(), &k.storage(), &v.storage(), &g.storage(), dm)?;
    grads.into_iter().zip([q, k, v]).map(|(s, t)| Tensor::from_storage(s, t.shape().clone()).map(Some)).collect()
}
