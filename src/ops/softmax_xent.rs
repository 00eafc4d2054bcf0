//! Softmax / log-softmax over the last axis and the fused cross-entropy loss, at the Tensor level.
//! Formulas and the numerically stable forms are in backend/cpu/softmax_xent.rs (twin of
//! kernels/softmax_xent.cu). Cross-entropy is fused so the (N, V) probabilities of a large vocab
//! are never materialised in the graph: the backward recomputes softmax from the logits.
//! Legend: N rows, C channels, V vocab.

use crate::autograd::Op;
use crate::backend;
use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};

impl Tensor {
    /// (.., C) -> softmax over the last axis, same shape.
    pub fn softmax(&self) -> Result<Tensor> {
        self.softmax_impl(false)
    }

    /// (.., C) -> log-softmax over the last axis, same shape.
    pub fn log_softmax(&self) -> Result<Tensor> {
        self.softmax_impl(true)
    }

    fn softmax_impl(&self, log: bool) -> Result<Tensor> {
        let name = if log { "log_softmax" } else { "softmax" };
        self.expect_float(name)?;
        let (n, c) = self.shape().rows_cols();
        let s = backend::softmax(&self.storage(), n, c, log)?;
        Ok(Tensor::from_op(s, self.shape().clone(), Op::Softmax { x: self.clone(), log }))
    }

    /// logits: (.., V) float, targets: (..) U32 (the leading shape of logits) -> scalar, shape [].
    /// The mean over rows whose target is not `ignore_index` of `logsumexp(row) - row[target]`;
    /// 0 when every row is ignored. Targets must be < V (or equal to `ignore_index`).
    pub fn cross_entropy(logits: &Tensor, targets: &Tensor, ignore_index: u32) -> Result<Tensor> {
        logits.expect_float("cross_entropy")?;
        targets.expect_u32("cross_entropy")?;
        let r = logits.rank();
        if r == 0 || targets.dims() != &logits.dims()[..r - 1] {
            return Err(Error::shape("cross_entropy", logits.shape(), targets.shape(), "logits must be (.., V) and targets (..), the leading shape of logits"));
        }
        let (n, v) = logits.shape().rows_cols();
        // Checked here (not only in the CPU kernel) so every device reports bad targets alike.
        backend::cpu::softmax_xent::check_targets(&targets.to_vec_u32()?, v, ignore_index)?;
        let s = backend::cross_entropy(&logits.storage(), &targets.storage(), n, v, ignore_index)?;
        let op = Op::CrossEntropy { logits: logits.clone(), targets: targets.clone(), ignore: ignore_index };
        Ok(Tensor::from_op(s, Shape(vec![]), op))
    }
}

/// dx from the forward output y and its gradient g (x only gives the shape).
pub fn softmax_backward(x: &Tensor, y: &Tensor, g: &Tensor, log: bool) -> Result<Tensor> {
    let (n, c) = x.shape().rows_cols();
    let s = backend::softmax_backward(&y.storage(), &g.storage(), n, c, log)?;
    Tensor::from_storage(s, x.shape().clone())
}

/// dlogits (.., V) = g (softmax(logits) - onehot(targets)) / count; g is the one-element
/// upstream gradient of the loss; rows whose target is `ignore` get zeros.
pub fn cross_entropy_backward(logits: &Tensor, targets: &Tensor, g: &Tensor, ignore: u32) -> Result<Tensor> {
    let (n, v) = logits.shape().rows_cols();
    let s = backend::cross_entropy_backward(&logits.storage(), &targets.storage(), &g.storage(), n, v, ignore)?;
    Tensor::from_storage(s, logits.shape().clone())
}
