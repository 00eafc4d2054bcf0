//! `Tensor::lora`: the LoRA linear y = x W + s (x A) B as ONE recorded op with its own backward
//! (dX, dW when W is not frozen, dA, dB), instead of three matmuls and an add in the graph.
//! Kiln's weight layout is (in, out): W (K, M), A (K, R), B (R, M); HF/PEFT's (out, in) layouts
//! are transposed at load time (src/io). Formulas: backend/cpu/lora.rs.

use crate::autograd::Op;
use crate::backend::{self, LoraDims};
use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};

impl Tensor {
    /// x: (..., K), w: (K, M), a: (K, R), b: (R, M) -> (..., M) = x W + scale (x A) B
    pub fn lora(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, scale: f64) -> Result<Tensor> {
        for t in [x, w, a, b] {
            t.expect_float("lora")?;
            if t.dtype() != x.dtype() {
                return Err(Error::DTypeMismatch { op: "lora", expected: x.dtype(), got: t.dtype() });
            }
        }
        if x.rank() < 1 || w.rank() != 2 || a.rank() != 2 || b.rank() != 2 {
            return Err(Error::shape("lora", x.shape(), w.shape(), "x must be (.., K) and W (K, M), A (K, R), B (R, M)"));
        }
        let k = *x.dims().last().unwrap_or(&0);
        let (m, r) = (w.dims()[1], a.dims()[1]);
        if w.dims()[0] != k {
            return Err(Error::shape("lora", x.shape(), w.shape(), format!("x's last dim {k} must equal W's rows")));
        }
        if a.dims()[0] != k {
            return Err(Error::shape("lora", x.shape(), a.shape(), format!("A must be ({k}, R)")));
        }
        if b.dims() != [r, m] {
            return Err(Error::shape("lora", a.shape(), b.shape(), format!("B must be ({r}, {m}) to follow A and match W")));
        }
        let n = x.elem_count() / k.max(1);
        let dims = LoraDims { n, k, m, r, scale };
        let s = backend::lora(&x.storage(), &w.storage(), &a.storage(), &b.storage(), dims)?;
        let mut out = x.dims().to_vec();
        *out.last_mut().expect("rank >= 1") = m;
        Ok(Tensor::from_op(s, Shape(out), Op::Lora { x: x.clone(), w: w.clone(), a: a.clone(), b: b.clone(), scale }))
    }
}

/// Gradients [dx, dw, da, db]; dx and dw are computed only when those inputs are tracked
/// (a frozen base weight costs no dW GEMM).
pub fn backward(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, g: &Tensor, scale: f64) -> Result<Vec<Option<Tensor>>> {
    let k = w.dims()[0];
    let dims = LoraDims { n: x.elem_count() / k.max(1), k, m: w.dims()[1], r: a.dims()[1], scale };
    let grads = backend::lora_backward(&x.storage(), &w.storage(), &a.storage(), &b.storage(), &g.storage(), dims, x.tracked(), w.tracked())?;
    grads
        .into_iter()
        .zip([x, w, a, b])
        .map(|(s, t)| s.map(|s| Tensor::from_storage(s, t.shape().clone())).transpose())
        .collect()
}
