//! RMSNorm (Llama) and LayerNorm (GPT-2) over the last axis, at the Tensor level. Formulas for
//! the forward and the hand-written backward are in backend/cpu/norm.rs (twin of kernels/norm.cu).
//!   rms_norm:   y = x / sqrt(mean(x^2) + eps) * w
//!   layer_norm: y = (x - mean) / sqrt(var + eps) * w + b   (biased variance)
//! Legend: N rows (all leading dims), C channels.

use crate::autograd::Op;
use crate::backend;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// x: (.., C), each parameter: (C). Returns (N, C).
fn check(op: &'static str, x: &Tensor, params: &[&Tensor], eps: f64) -> Result<(usize, usize)> {
    x.expect_float(op)?;
    if x.rank() == 0 {
        return Err(Error::bad_shape(op, x.shape(), "x needs a last axis to normalise over"));
    }
    let (n, c) = x.shape().rows_cols();
    for p in params {
        if p.dims() != [c] {
            return Err(Error::shape(op, x.shape(), p.shape(), format!("the weight/bias must be (C) = [{c}]")));
        }
        if p.dtype() != x.dtype() {
            return Err(Error::DTypeMismatch { op, expected: x.dtype(), got: p.dtype() });
        }
    }
    if eps.is_nan() || eps < 0.0 {
        return Err(Error::Msg(format!("{op}: eps must be >= 0, got {eps}")));
    }
    Ok((n, c))
}

/// Turn the backend's gradient buffers into tensors shaped like `like`, all Some.
fn wrap(grads: Vec<backend::Storage>, like: &[&Tensor]) -> Result<Vec<Option<Tensor>>> {
    grads.into_iter().zip(like).map(|(s, t)| Tensor::from_storage(s, t.shape().clone()).map(Some)).collect()
}

impl Tensor {
    /// x: (.., C), w: (C) -> y (.., C) = x / sqrt(mean(x^2) + eps) * w.
    pub fn rms_norm(&self, w: &Tensor, eps: f64) -> Result<Tensor> {
        let (n, c) = check("rms_norm", self, &[w], eps)?;
        let s = backend::rms_norm(&self.storage(), &w.storage(), n, c, eps)?;
        Ok(Tensor::from_op(s, self.shape().clone(), Op::RmsNorm { x: self.clone(), w: w.clone(), eps }))
    }

    /// x: (.., C), w, b: (C) -> y (.., C) = (x - mean) / sqrt(var + eps) * w + b.
    pub fn layer_norm(&self, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
        let (n, c) = check("layer_norm", self, &[w, b], eps)?;
        let s = backend::layer_norm(&self.storage(), &w.storage(), &b.storage(), n, c, eps)?;
        Ok(Tensor::from_op(s, self.shape().clone(), Op::LayerNorm { x: self.clone(), w: w.clone(), b: b.clone(), eps }))
    }
}

/// -> [dx, dw]
pub fn rms_norm_backward(x: &Tensor, w: &Tensor, g: &Tensor, eps: f64) -> Result<Vec<Option<Tensor>>> {
    let (n, c) = x.shape().rows_cols();
    let d = backend::rms_norm_backward(&x.storage(), &w.storage(), &g.storage(), n, c, eps)?;
    wrap(d, &[x, w])
}

/// -> [dx, dw, db]
pub fn layer_norm_backward(x: &Tensor, w: &Tensor, b: &Tensor, g: &Tensor, eps: f64) -> Result<Vec<Option<Tensor>>> {
    let (n, c) = x.shape().rows_cols();
    let d = backend::layer_norm_backward(&x.storage(), &w.storage(), &g.storage(), n, c, eps)?;
    wrap(d, &[x, w, b])
}
