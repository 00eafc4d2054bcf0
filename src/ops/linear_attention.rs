//! Causal linear attention at the Tensor level: shape checks, one backend call, and the two
//! recorded ops (one for the output, one for the final state), with their backwards.
//!
//! Why: a running-state alternative to softmax attention (Katharopoulos et al., "Transformers are
//! RNNs", 2020) whose state can be carried across calls: s0 in, s_final out.
//! Source: o_t = q_t (S0 + sum_{s <= t} k_s^T v_s), s_final = S0 + K^T V, no scale (callers scale
//! q). Kernel and backward formulas in backend/cpu/linear_attention.rs.
//!
//! Shapes: q, k (B, H, T, Dk), v (B, H, T, Dv), states (B, H, Dk, Dv); Dk, Dv are head dims.

use crate::autograd::Op;
use crate::backend::{self, LinAttnDims};
use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};

const OP: &str = "linear_attention";

impl Tensor {
    /// q, k: (B, H, T, Dk), v: (B, H, T, Dv), s0: (B, H, Dk, Dv) or None (zeros)
    /// -> (o (B, H, T, Dv), s_final (B, H, Dk, Dv)).
    /// `chunked` picks the chunk form (C = 64, fast) over the per-step recurrence (reference).
    pub fn linear_attention(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>, chunked: bool) -> Result<(Tensor, Tensor)> {
        let d = check(q, k, v, s0)?;
        let s0_storage = s0.map(|s| s.storage());
        let out = backend::linear_attention(&q.storage(), &k.storage(), &v.storage(), s0_storage.as_deref(), d, chunked)?;
        drop(s0_storage);
        let [o, s_final]: [_; 2] = out.try_into().map_err(|_| Error::Msg(format!("{OP}: the backend must return [o, s_final]")))?;
        let (b, h) = (q.dims()[0], q.dims()[1]);
        let o = Tensor::from_op(o, Shape(vec![b, h, d.t, d.dv]), Op::LinearAttention { q: q.clone(), k: k.clone(), v: v.clone(), s0: s0.cloned(), chunked });
        let s_final = Tensor::from_op(s_final, Shape(vec![b, h, d.dk, d.dv]), Op::LinearAttentionState { k: k.clone(), v: v.clone(), s0: s0.cloned() });
        Ok((o, s_final))
    }
}

/// Validate ranks, shapes and dtypes; errors name the op and the shapes involved.
fn check(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>) -> Result<LinAttnDims> {
    for x in [q, k, v].into_iter().chain(s0) {
        if x.rank() != 4 {
            return Err(Error::bad_shape(OP, x.shape(), "q, k, v must be (B, H, T, D) and s0 (B, H, Dk, Dv)"));
        }
        x.expect_float(OP)?;
        if x.dtype() != q.dtype() {
            return Err(Error::DTypeMismatch { op: OP, expected: q.dtype(), got: x.dtype() });
        }
    }
    if k.shape() != q.shape() {
        return Err(Error::shape(OP, q.shape(), k.shape(), "q and k must have the same shape (B, H, T, Dk)"));
    }
    let (qd, dv) = (q.dims(), v.dims()[3]);
    let (b, h, t, dk) = (qd[0], qd[1], qd[2], qd[3]);
    if v.dims()[..3] != [b, h, t] {
        return Err(Error::shape(OP, q.shape(), v.shape(), "q (B, H, T, Dk) and v (B, H, T, Dv) must agree in B, H and T"));
    }
    if let Some(s) = s0 {
        if s.dims() != [b, h, dk, dv] {
            let want = Shape(vec![b, h, dk, dv]);
            return Err(Error::shape(OP, s.shape(), &want, "the initial state s0 must be (B, H, Dk, Dv)"));
        }
    }
    Ok(LinAttnDims { bh: b * h, t, dk, dv })
}

/// Gradients of o's inputs, in `Op::inputs` order: [dq, dk, dv, (ds0 if s0 was given)].
/// g: (B, H, T, Dv). Formulas in backend/cpu/linear_attention.rs.
pub fn backward(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>, g: &Tensor, chunked: bool) -> Result<Vec<Option<Tensor>>> {
    let d = check(q, k, v, s0)?;
    if g.shape() != v.shape() {
        return Err(Error::shape(OP, g.shape(), v.shape(), "the output gradient must have o's shape (B, H, T, Dv)"));
    }
    let s0_storage = s0.map(|s| s.storage());
    let grads = backend::linear_attention_backward(&q.storage(), &k.storage(), &v.storage(), s0_storage.as_deref(), &g.storage(), d, chunked)?;
    drop(s0_storage);
    let [dq, dk, dv, ds0]: [_; 4] = grads.try_into().map_err(|_| Error::Msg(format!("{OP}: the backend must return [dq, dk, dv, ds0]")))?;
    let mut out = vec![
        Some(Tensor::from_storage(dq, q.shape().clone())?),
        Some(Tensor::from_storage(dk, k.shape().clone())?),
        Some(Tensor::from_storage(dv, v.shape().clone())?),
    ];
    if let Some(s0) = s0 {
        out.push(Some(Tensor::from_storage(ds0, s0.shape().clone())?));
    }
    Ok(out)
}

/// Gradients of s_final = S0 + K^T V, in `Op::inputs` order [dk, dv, (ds0)], g: (B, H, Dk, Dv):
/// dK = V g^T (B, H, T, Dk), dV = K g (B, H, T, Dv), dS0 = g.
pub fn state_backward(k: &Tensor, v: &Tensor, s0: Option<&Tensor>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    let dk = v.matmul_t(g, false, true)?;
    let dv = k.matmul(g)?;
    let mut out = vec![Some(dk), Some(dv)];
    if s0.is_some() {
        out.push(Some(g.clone()));
    }
    Ok(out)
}
