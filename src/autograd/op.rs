//! `Op`: how a tensor was computed. One variant per primitive or fused op, holding its inputs
//! (and the few constants the backward pass needs). backward.rs has the one match over it.

use crate::backend::{BinaryOp, ReduceOp, UnaryOp};
use crate::tensor::Tensor;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum Op {
    // ---- primitives ----
    Binary(BinaryOp, Tensor, Tensor),
    Unary(UnaryOp, Tensor),
    /// x * mul + (constant)
    Affine(Tensor, f64),
    Matmul { a: Tensor, b: Tensor, ta: bool, tb: bool },
    /// reduction over `axis`, result keeps the axis with size 1
    Reduce(ReduceOp, Tensor, usize),
    Reshape(Tensor),
    Permute(Tensor, Vec<usize>),
    Narrow { x: Tensor, axis: usize, start: usize },
    Concat { parts: Vec<Tensor>, axis: usize },
    IndexSelect { x: Tensor, ids: Tensor, axis: usize },
    Cast(Tensor),
    ToDevice(Tensor),
    // ---- fused ops (src/ops/), each with a hand-written backward ----
    /// softmax (or log-softmax) over the last axis
    Softmax { x: Tensor, log: bool },
    CrossEntropy { logits: Tensor, targets: Tensor, ignore: u32 },
    RmsNorm { x: Tensor, w: Tensor, eps: f64 },
    LayerNorm { x: Tensor, w: Tensor, b: Tensor, eps: f64 },
    SwiGlu { gate: Tensor, up: Tensor },
    Rope { x: Tensor, positions: Tensor, inv_freq: Arc<Vec<f32>> },
    Embedding { table: Tensor, ids: Tensor },
    Attention { q: Tensor, k: Tensor, v: Tensor, scale: f64 },
    LinearAttention { q: Tensor, k: Tensor, v: Tensor, s0: Option<Tensor>, chunked: bool },
    /// the final state S0 + K^T V returned beside linear attention's output
    LinearAttentionState { k: Tensor, v: Tensor, s0: Option<Tensor> },
    Lora { x: Tensor, w: Tensor, a: Tensor, b: Tensor, scale: f64 },
    /// packed variable-length linear attention's output; cu = cumulative sequence offsets
    LinearAttentionVarlen { q: Tensor, k: Tensor, v: Tensor, s0: Option<Tensor>, cu: Arc<[u32]>, chunked: bool },
    /// its final states (N, H, Dk, Dv); q is kept only to rerun the shared backward
    LinearAttentionVarlenState { q: Tensor, k: Tensor, v: Tensor, s0: Option<Tensor>, cu: Arc<[u32]>, chunked: bool },
    /// LoRA with one adapter per row: ids (N rows), scales (G adapters)
    LoraMultiAdapter { x: Tensor, w: Tensor, a: Tensor, b: Tensor, ids: Arc<[u32]>, scales: Arc<[f64]> },
}

impl Op {
    /// The inputs, in the order backward() returns their gradients.
    pub fn inputs(&self) -> Vec<&Tensor> {
        match self {
            Op::Binary(_, a, b) => vec![a, b],
            Op::Unary(_, x) | Op::Affine(x, _) | Op::Reduce(_, x, _) | Op::Reshape(x) | Op::Permute(x, _) => vec![x],
            Op::Cast(x) | Op::ToDevice(x) | Op::Narrow { x, .. } | Op::Softmax { x, .. } => vec![x],
            Op::Matmul { a, b, .. } => vec![a, b],
            Op::Concat { parts, .. } => parts.iter().collect(),
            Op::IndexSelect { x, ids, .. } => vec![x, ids],
            Op::CrossEntropy { logits, targets, .. } => vec![logits, targets],
            Op::RmsNorm { x, w, .. } => vec![x, w],
            Op::LayerNorm { x, w, b, .. } => vec![x, w, b],
            Op::SwiGlu { gate, up } => vec![gate, up],
            Op::Rope { x, positions, .. } => vec![x, positions],
            Op::Embedding { table, ids } => vec![table, ids],
            Op::Attention { q, k, v, .. } => vec![q, k, v],
            Op::LinearAttention { q, k, v, s0, .. } => [Some(q), Some(k), Some(v), s0.as_ref()].into_iter().flatten().collect(),
            Op::LinearAttentionState { k, v, s0 } => [Some(k), Some(v), s0.as_ref()].into_iter().flatten().collect(),
            Op::Lora { x, w, a, b, .. } => vec![x, w, a, b],
            Op::LinearAttentionVarlen { q, k, v, s0, .. } => [Some(q), Some(k), Some(v), s0.as_ref()].into_iter().flatten().collect(),
            Op::LinearAttentionVarlenState { k, v, s0, .. } => [Some(k), Some(v), s0.as_ref()].into_iter().flatten().collect(),
            Op::LoraMultiAdapter { x, w, a, b, .. } => vec![x, w, a, b],
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Binary(..) => "binary",
            Op::Unary(..) => "unary",
            Op::Affine(..) => "affine",
            Op::Matmul { .. } => "matmul",
            Op::Reduce(..) => "reduce",
            Op::Reshape(..) => "reshape",
            Op::Permute(..) => "permute",
            Op::Narrow { .. } => "narrow",
            Op::Concat { .. } => "concat",
            Op::IndexSelect { .. } => "index_select",
            Op::Cast(..) => "cast",
            Op::ToDevice(..) => "to_device",
            Op::Softmax { .. } => "softmax",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::RmsNorm { .. } => "rms_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::SwiGlu { .. } => "swiglu",
            Op::Rope { .. } => "rope",
            Op::Embedding { .. } => "embedding",
            Op::Attention { .. } => "attention",
            Op::LinearAttention { .. } => "linear_attention",
            Op::LinearAttentionState { .. } => "linear_attention_state",
            Op::Lora { .. } => "lora",
            Op::LinearAttentionVarlen { .. } => "linear_attention_varlen",
            Op::LinearAttentionVarlenState { .. } => "linear_attention_varlen_state",
            Op::LoraMultiAdapter { .. } => "lora_multi_adapter",
        }
    }
}
