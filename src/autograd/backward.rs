//! The backward pass of every Op: given the node `y` and its output gradient `g`, return the
//! gradient of each input (in `Op::inputs` order; None where no gradient exists). Primitives are
//! written here, a few lines each with their formula; fused ops call their module in src/ops/.

use super::Op;
use crate::backend::{self, BinaryOp, ReduceOp, UnaryOp};
use crate::ops;
use crate::tensor::Tensor;
use crate::{Error, Result};

pub fn backward_op(op: &Op, y: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    Ok(match op {
        Op::Binary(bop, a, b) => {
            let (ga, gb) = match bop {
                // d(a+b) = g, g;  d(a-b) = g, -g;  d(ab) = g b, g a;  d(a/b) = g / b, -g a / b^2
                BinaryOp::Add => (g.clone(), g.clone()),
                BinaryOp::Sub => (g.clone(), g.neg()?),
                BinaryOp::Mul => (g.mul(b)?, g.mul(a)?),
                BinaryOp::Div => (g.div(b)?, g.mul(a)?.div(&b.sqr()?)?.neg()?),
                // max(a, b): the gradient goes to whichever was taken (a on ties)
                BinaryOp::Maximum => {
                    let m = a.ge(b)?;
                    (g.mul(&m)?, g.mul(&m.affine(-1.0, 1.0)?)?)
                }
                BinaryOp::Ge => return Ok(vec![None, None]),
            };
            vec![Some(ga.sum_to(a.shape())?), Some(gb.sum_to(b.shape())?)]
        }
        Op::Unary(uop, x) => {
            let dx = match uop {
                UnaryOp::Neg => g.neg()?,
                UnaryOp::Exp => g.mul(y)?,                                   // d e^x = e^x
                UnaryOp::Log => g.div(x)?,                                   // d ln x = 1/x
                UnaryOp::Sqrt => g.div(y)?.scale(0.5)?,                      // d sqrt x = 1 / (2 sqrt x)
                UnaryOp::Tanh => g.mul(&y.sqr()?.affine(-1.0, 1.0)?)?,       // d tanh = 1 - tanh^2
                UnaryOp::Square => g.mul(x)?.scale(2.0)?,                    // d x^2 = 2x
                UnaryOp::Recip => g.mul(&y.sqr()?)?.neg()?,                  // d 1/x = -1/x^2
                UnaryOp::Relu => g.mul(&x.unary(UnaryOp::Step)?)?,
                UnaryOp::Gelu => g.mul(&x.unary(UnaryOp::GeluGrad)?)?,
                UnaryOp::Silu => g.mul(&x.unary(UnaryOp::SiluGrad)?)?,
                UnaryOp::GeluGrad | UnaryOp::SiluGrad | UnaryOp::Step => {
                    return Err(Error::Autograd(format!("{uop:?} is a backward helper and has no gradient")))
                }
            };
            vec![Some(dx)]
        }
        Op::Affine(_, mul) => vec![Some(g.scale(*mul)?)],
        Op::Matmul { a, b, ta, tb } => {
            // C = op(A) op(B): d op(A) = G op(B)^T, d op(B) = op(A)^T G; undo the op, then sum
            // over any batch dims that were broadcast (a shared weight matrix).
            let da = g.matmul_t(b, false, !tb)?;
            let da = if *ta { da.transpose(-1, -2)? } else { da };
            let db = if b.rank() == 2 && a.rank() > 2 && !ta {
                // shared weight: flatten the batch into rows, one (K, BM) x (BM, N) product
                let (k, n) = (a.dims()[a.rank() - 1], g.dims()[g.rank() - 1]);
                let (a2, g2) = (a.reshape([a.elem_count() / k.max(1), k])?, g.reshape([g.elem_count() / n.max(1), n])?);
                if *tb { g2.matmul_t(&a2, true, false)? } else { a2.matmul_t(&g2, true, false)? }
            } else {
                let db = a.matmul_t(g, !ta, false)?;
                if *tb { db.transpose(-1, -2)? } else { db }
            };
            vec![Some(da.sum_to(a.shape())?), Some(db.sum_to(b.shape())?)]
        }
        Op::Reduce(ReduceOp::Sum, x, _) => vec![Some(broadcast_like(g, x)?)],
        // max: the gradient goes to every element equal to the maximum
        Op::Reduce(ReduceOp::Max, x, _) => vec![Some(x.ge(y)?.mul(g)?)],
        Op::Reshape(x) => vec![Some(g.reshape(x.shape().clone())?)],
        Op::Permute(_, perm) => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            vec![Some(g.permute(&inv)?)]
        }
        Op::Narrow { x, axis, start } => {
            // pad the slice's gradient with zeros back to x's extent
            let (len, dim) = (g.dims()[*axis], x.dims()[*axis]);
            let zeros = |n: usize| {
                let mut s = x.dims().to_vec();
                s[*axis] = n;
                Tensor::zeros(s, g.dtype(), g.device())
            };
            let parts = [zeros(*start)?, g.clone(), zeros(dim - start - len)?];
            vec![Some(Tensor::concat(&parts, *axis as isize)?)]
        }
        Op::Concat { parts, axis } => {
            let mut off = 0;
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                let n = p.dims()[*axis];
                out.push(Some(g.narrow(*axis as isize, off, n)?));
                off += n;
            }
            out
        }
        Op::IndexSelect { x, ids, axis } => {
            // scatter-add the gathered rows' gradients back (in id order: deterministic)
            let (outer, dim, inner) = x.shape().split_at_axis(*axis);
            let s = backend::index_add(&g.storage(), &ids.storage(), outer, dim, inner)?;
            vec![Some(Tensor::from_storage(s, x.shape().clone())?), None]
        }
        Op::Cast(x) => vec![Some(g.to_dtype(x.dtype())?)],
        Op::ToDevice(x) => vec![Some(g.to_device(x.device())?)],
        // ---- fused ops: formulas in their modules ----
        Op::Softmax { x, log } => vec![Some(ops::softmax_xent::softmax_backward(x, y, g, *log)?)],
        Op::CrossEntropy { logits, targets, ignore } => {
            vec![Some(ops::softmax_xent::cross_entropy_backward(logits, targets, g, *ignore)?), None]
        }
        Op::RmsNorm { x, w, eps } => ops::norm::rms_norm_backward(x, w, g, *eps)?,
        Op::LayerNorm { x, w, b, eps } => ops::norm::layer_norm_backward(x, w, b, g, *eps)?,
        Op::SwiGlu { gate, up } => {
            let mut d = backend::swiglu_backward(&gate.storage(), &up.storage(), &g.storage())?.into_iter();
            let mut next = |t: &Tensor| Tensor::from_storage(d.next().expect("two grads"), t.shape().clone()).map(Some);
            vec![next(gate)?, next(up)?]
        }
        Op::Rope { positions, inv_freq, .. } => vec![Some(ops::rope::rope_inverse(g, positions, inv_freq)?), None],
        Op::Embedding { table, ids } => vec![Some(ops::embedding::embedding_backward(table, ids, g)?), None],
        Op::Attention { q, k, v, scale } => ops::attention::attention_backward(q, k, v, g, *scale)?,
        Op::LinearAttention { q, k, v, s0, chunked } => ops::linear_attention::backward(q, k, v, s0.as_ref(), g, *chunked)?,
        Op::LinearAttentionState { k, v, s0 } => ops::linear_attention::state_backward(k, v, s0.as_ref(), g)?,
        Op::Lora { x, w, a, b, scale } => ops::lora::backward(x, w, a, b, g, *scale)?,
        Op::LinearAttentionVarlen { q, k, v, s0, cu, chunked } => ops::linear_attention_varlen::backward(q, k, v, s0.as_ref(), cu, g, *chunked, false)?,
        Op::LinearAttentionVarlenState { q, k, v, s0, cu, chunked } => ops::linear_attention_varlen::backward(q, k, v, s0.as_ref(), cu, g, *chunked, true)?,
        Op::LoraMultiAdapter { x, w, a, b, ids, scales } => ops::lora_multi_adapter::backward(x, w, a, b, ids, scales, g)?,
    })
}

/// g (x's shape with reduced axes of size 1) expanded to x's shape.
fn broadcast_like(g: &Tensor, x: &Tensor) -> Result<Tensor> {
    Tensor::zeros(x.shape().clone(), g.dtype(), g.device())?.add(g)
}
