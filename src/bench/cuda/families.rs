//! The bench cases of every kernel family, in the order the table prints them.
use super::{Ctx, Row};
use crate::Result;

pub type RowsFn = fn(&Ctx) -> Result<Vec<Row>>;

pub const ALL: &[(&str, RowsFn)] = &[
    ("elementwise", super::elementwise::rows),
    ("reduce", super::reduce::rows),
    ("layout", super::layout::rows),
    ("softmax_xent", super::softmax_xent::rows),
    ("norm", super::norm::rows),
    ("rope", super::rope::rows),
    ("embedding", super::embedding::rows),
    ("adamw", super::adamw::rows),
    ("matmul", super::matmul::rows),
    ("attention", super::attention::rows),
    ("lora", super::lora::rows),
    ("linear_attention", super::linear_attention::rows),
    ("sampling", super::sampling::rows),
];
