//! SwiGLU (Shazeer, "GLU Variants Improve Transformer", 2020): y = silu(gate) * up, the gated MLP
//! activation of Llama-style models. Backward in backend/cpu/elementwise.rs (swiglu_backward).

use crate::autograd::Op;
use crate::backend;
use crate::tensor::Tensor;
use crate::{Error, Result};

impl Tensor {
    /// gate, up: same shape (.., F) -> silu(gate) * up
    pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
        if gate.shape() != up.shape() {
            return Err(Error::shape("swiglu", gate.shape(), up.shape(), "gate and up must have the same shape"));
        }
        let s = backend::swiglu(&gate.storage(), &up.storage())?;
        Ok(Tensor::from_op(s, gate.shape().clone(), Op::SwiGlu { gate: gate.clone(), up: up.clone() }))
    }
}
