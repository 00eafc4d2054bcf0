//! Packed variable-length causal linear attention at the Tensor level: sequences of different
//! lengths packed along T, described by cumulative offsets `cu_seqlens`; the state restarts at
//! every sequence start. Two recorded ops (output, final states), both differentiated by one
//! backend backward (formulas in backend/cpu/linear_attention_varlen.rs).
//!
//! Shapes: q, k (1, H, T, Dk), v (1, H, T, Dv), cu_seqlens (N + 1) with sequence n on rows
//! `cu[n]..cu[n + 1]`, states (N, H, Dk, Dv) (one per sequence and head).

use crate::autograd::Op;
use crate::backend::{self, check_cu_seqlens, LinAttnDims};
use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};
use std::sync::Arc;

const OP: &str = "linear_attention_varlen";

impl Tensor {
    /// q, k: (1, H, T, Dk), v: (1, H, T, Dv), s0: (N, H, Dk, Dv) or None (zeros), cu_seqlens:
    /// N + 1 offsets (0 first, T last, non-decreasing) -> (o (1, H, T, Dv), s_final (N, H, Dk, Dv)).
    /// Equals `linear_attention` run on each sequence alone; `chunked` as there.
    pub fn linear_attention_varlen(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>, cu_seqlens: &[u32], chunked: bool) -> Result<(Tensor, Tensor)> {
        let d = check(q, k, v, s0, cu_seqlens)?;
        let cu: Arc<[u32]> = cu_seqlens.into();
        let s0_storage = s0.map(|s| s.storage());
        let out = backend::linear_attention_varlen(&q.storage(), &k.storage(), &v.storage(), s0_storage.as_deref(), &cu, d, chunked)?;
        drop(s0_storage);
        let [o, s_final]: [_; 2] = out.try_into().map_err(|_| Error::Msg(format!("{OP}: the backend must return [o, s_final]")))?;
        let n = cu.len() - 1;
        let (q_, k_, v_, s0_) = (q.clone(), k.clone(), v.clone(), s0.cloned());
        let o = Tensor::from_op(o, Shape(vec![1, d.bh, d.t, d.dv]), Op::LinearAttentionVarlen { q: q_, k: k_, v: v_, s0: s0_, cu: cu.clone(), chunked });
        let op = Op::LinearAttentionVarlenState { q: q.clone(), k: k.clone(), v: v.clone(), s0: s0.cloned(), cu, chunked };
        let s_final = Tensor::from_op(s_final, Shape(vec![n, d.bh, d.dk, d.dv]), op);
        Ok((o, s_final))
    }
}

/// Validate ranks, shapes, dtypes and offsets; errors name the op and the shapes involved.
fn check(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>, cu: &[u32]) -> Result<LinAttnDims> {
    for x in [q, k, v].into_iter().chain(s0) {
        if x.rank() != 4 {
            return Err(Error::bad_shape(OP, x.shape(), "q, k, v must be (1, H, T, D) and s0 (N, H, Dk, Dv)"));
        }
        x.expect_float(OP)?;
        if x.dtype() != q.dtype() {
            return Err(Error::DTypeMismatch { op: OP, expected: q.dtype(), got: x.dtype() });
        }
    }
    if k.shape() != q.shape() {
        return Err(Error::shape(OP, q.shape(), k.shape(), "q and k must have the same shape (1, H, T, Dk)"));
    }
    let (qd, dv) = (q.dims(), v.dims()[3]);
    let (b, h, t, dk) = (qd[0], qd[1], qd[2], qd[3]);
    if b != 1 {
        return Err(Error::bad_shape(OP, q.shape(), "packed sequences need batch 1: q (1, H, T, Dk), sequences along T"));
    }
    if v.dims()[..3] != [b, h, t] {
        return Err(Error::shape(OP, q.shape(), v.shape(), "q (1, H, T, Dk) and v (1, H, T, Dv) must agree in H and T"));
    }
    check_cu_seqlens(OP, cu, t)?;
    if let Some(s) = s0 {
        if s.dims() != [cu.len() - 1, h, dk, dv] {
            let want = Shape(vec![cu.len() - 1, h, dk, dv]);
            return Err(Error::shape(OP, s.shape(), &want, "the initial states s0 must be (N, H, Dk, Dv), N = cu_seqlens.len() - 1"));
        }
    }
    Ok(LinAttnDims { bh: h, t, dk, dv })
}

/// Gradients in `Op::inputs` order: [dq, dk, dv, (ds0)] of o (g = dO, `state` false) or
/// [dk, dv, (ds0)] of s_final (g = dS_final, `state` true).
#[allow(clippy::too_many_arguments)]
pub fn backward(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>, cu: &[u32], g: &Tensor, chunked: bool, state: bool) -> Result<Vec<Option<Tensor>>> {
    let d = check(q, k, v, s0, cu)?;
    let zeros;
    let (dout, dsf) = if state {
        zeros = Tensor::zeros(v.shape().clone(), v.dtype(), v.device())?;
        (&zeros, Some(g))
    } else {
        (g, None)
    };
    let s0_storage = s0.map(|s| s.storage());
    let dsf_storage = dsf.map(|s| s.storage());
    let grads = backend::linear_attention_varlen_backward(
        &q.storage(), &k.storage(), &v.storage(), s0_storage.as_deref(), &dout.storage(), dsf_storage.as_deref(), cu, d, chunked,
    )?;
    let [dq, dk, dv, ds0]: [_; 4] = grads.try_into().map_err(|_| Error::Msg(format!("{OP}: the backend must return [dq, dk, dv, ds0]")))?;
    let mut out = Vec::with_capacity(4);
    if !state {
        out.push(Some(Tensor::from_storage(dq, q.shape().clone())?));
    }
    out.push(Some(Tensor::from_storage(dk, k.shape().clone())?));
    out.push(Some(Tensor::from_storage(dv, v.shape().clone())?));
    if let Some(s0) = s0 {
        out.push(Some(Tensor::from_storage(ds0, s0.shape().clone())?));
    }
    Ok(out)
}
