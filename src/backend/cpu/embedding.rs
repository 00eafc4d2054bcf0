//! Embedding gather and its deterministic scatter-add backward. Twin of kernels/embedding.cu.

use super::{layout, CpuStorage};
use crate::Result;

/// table: (V, C), ids: (N) -> (N, C)
pub fn embedding(table: &CpuStorage, ids: &[u32], v: usize, c: usize) -> Result<CpuStorage> {
    layout::index_select(table, ids, 1, v, c)
}

/// dy: (N, C) -> dtable (V, C); rows are added in the order of `ids`.
pub fn embedding_backward(dy: &CpuStorage, ids: &[u32], v: usize, c: usize) -> Result<CpuStorage> {
    layout::index_add(dy, ids, 1, v, c)
}
