//! Optimisers and learning-rate schedules: AdamW (Loshchilov & Hutter, "Decoupled Weight Decay
//! Regularization", 2019), SGD with momentum, constant / warmup+cosine / warmup+linear schedules,
//! and global-norm gradient clipping. Updates run under no_grad and replace each parameter's
//! buffer in place (`Tensor::assign`), so models keep their parameter handles.

mod adamw;
mod schedule;

pub use adamw::{AdamW, Sgd};
pub use schedule::Schedule;

use crate::autograd::Grads;
use crate::tensor::Tensor;
use crate::Result;

/// sqrt of the sum of squares of every gradient (f64 accumulation).
pub fn grad_norm(params: &[Tensor], grads: &Grads) -> Result<f64> {
    let mut sq = 0.0;
    for p in params {
        if let Some(g) = grads.get(p) {
            sq += g.to_vec_f64()?.iter().map(|v| v * v).sum::<f64>();
        }
    }
    Ok(sq.sqrt())
}

/// Scale every gradient by max_norm / norm when the global norm exceeds max_norm.
/// Returns the norm before clipping.
pub fn clip_grad_norm(params: &[Tensor], grads: &mut Grads, max_norm: f64) -> Result<f64> {
    let norm = grad_norm(params, grads)?;
    if norm > max_norm && norm.is_finite() {
        let _ng = crate::no_grad();
        let s = max_norm / (norm + 1e-6);
        for p in params {
            if let Some(g) = grads.remove(p) {
                grads.insert(p, g.scale(s)?);
            }
        }
    }
    Ok(norm)
}
