//! `Tensor::lora_multi_adapter`: one shared base weight W and G stacked LoRA adapters, each row of
//! the batch using its own: `y[i] = x[i] W + s_g (x[i] A_g) B_g` with `g = ids[i]`, as ONE recorded
//! op with its own backward (dX, dW when W is not frozen, dA, dB). Formulas:
//! backend/cpu/lora_multi_adapter.rs.
//!
//! Shapes: x (..., K) with N rows in all, w (K, M), a (G, K, R), b (G, R, M), ids (N), scales (G).

use crate::autograd::Op;
use crate::backend::{self, check_adapter_ids, LoraMultiDims};
use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};
use std::sync::Arc;

const OP: &str = "lora_multi_adapter";

impl Tensor {
    /// x: (..., K), w: (K, M), a: (G, K, R), b: (G, R, M), ids: one adapter index < G per row of
    /// x (N = x.elem_count() / K), scales: G -> (..., M).
    pub fn lora_multi_adapter(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, ids: &[u32], scales: &[f64]) -> Result<Tensor> {
        let d = dims(x, w, a, b)?;
        check_adapter_ids(OP, ids, scales, d)?;
        let s = backend::lora_multi_adapter(&x.storage(), &w.storage(), &a.storage(), &b.storage(), ids, scales, d)?;
        let mut out = x.dims().to_vec();
        *out.last_mut().expect("rank >= 1") = d.m;
        let op = Op::LoraMultiAdapter { x: x.clone(), w: w.clone(), a: a.clone(), b: b.clone(), ids: ids.into(), scales: Arc::from(scales) };
        Ok(Tensor::from_op(s, Shape(out), op))
    }
}

/// Validate dtypes and shapes -> the dimensions.
fn dims(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor) -> Result<LoraMultiDims> {
    for t in [x, w, a, b] {
        t.expect_float(OP)?;
        if t.dtype() != x.dtype() {
            return Err(Error::DTypeMismatch { op: OP, expected: x.dtype(), got: t.dtype() });
        }
    }
    if x.rank() < 1 || w.rank() != 2 || a.rank() != 3 || b.rank() != 3 {
        return Err(Error::shape(OP, x.shape(), a.shape(), "x must be (.., K), W (K, M), A (G, K, R), B (G, R, M)"));
    }
    let k = *x.dims().last().unwrap_or(&0);
    let (m, g, r) = (w.dims()[1], a.dims()[0], a.dims()[2]);
    if w.dims()[0] != k {
        return Err(Error::shape(OP, x.shape(), w.shape(), format!("x's last dim {k} must equal W's rows")));
    }
    if a.dims()[1] != k {
        return Err(Error::shape(OP, x.shape(), a.shape(), format!("A must be (G, {k}, R)")));
    }
    if b.dims() != [g, r, m] {
        return Err(Error::shape(OP, a.shape(), b.shape(), format!("B must be ({g}, {r}, {m}) to follow A and match W")));
    }
    Ok(LoraMultiDims { n: x.elem_count() / k.max(1), k, m, r, g })
}

/// Gradients [dx, dw, da, db]; dx and dw only when those inputs are tracked.
pub fn backward(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, ids: &[u32], scales: &[f64], g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    let d = dims(x, w, a, b)?;
    let grads = backend::lora_multi_adapter_backward(&x.storage(), &w.storage(), &a.storage(), &b.storage(), &g.storage(), ids, scales, d, x.tracked(), w.tracked())?;
    grads
        .into_iter()
        .zip([x, w, a, b])
        .map(|(s, t)| s.map(|s| Tensor::from_storage(s, t.shape().clone())).transpose())
        .collect()
}
