//! The bench cases of every kernel family, in the order they run and print: the families the
//! issues' speed targets name first (GEMM, LoRA, linear attention, the sampler), then the
//! memory-bound ones, then attention (report-only, and the slowest), so that a run stopped by a
//! lent GPU's time limit has lost the least.
use super::{Ctx, Row};
use crate::Result;

pub type RowsFn = fn(&Ctx) -> Result<Vec<Row>>;

pub const ALL: &[(&str, RowsFn)] = &[
    ("matmul", super::matmul::rows),
    ("lora", super::lora::rows),
    ("linear_attention", super::linear_attention::rows),
    ("sampling", super::sampling::rows),
    ("elementwise", super::elementwise::rows),
    ("reduce", super::reduce::rows),
    ("layout", super::layout::rows),
    ("softmax_xent", super::softmax_xent::rows),
    ("norm", super::norm::rows),
    ("rope", super::rope::rows),
    ("embedding", super::embedding::rows),
    ("adamw", super::adamw::rows),
    ("attention", super::attention::rows),
];
