//! Launch wrappers for embedding: the gather and the deterministic scatter-add are
//! layout::index_select / layout::index_add with outer = 1 (kernels in kernels/layout.cu), as in
//! the CPU twin backend/cpu/embedding.rs. Ids are range-checked by the caller (ops/embedding.rs);
//! the kernels still never touch memory for an id >= V (zero row forward, skipped backward).

use super::{layout, CudaStorage};
use crate::tensor::Shape;
use crate::{Error, Result};

/// table: (V, C), ids: (N) U32 -> (N, C)
pub fn embedding(table: &CudaStorage, ids: &CudaStorage, v: usize, c: usize) -> Result<CudaStorage> {
    if table.len != v * c {
        return Err(Error::bad_shape("embedding", &Shape(vec![v, c]), format!("the table holds {} elements", table.len)));
    }
    layout::index_select(table, ids, 1, v, c)
}

/// dy: (N, C) -> dtable (V, C); rows are added in the order of `ids`.
pub fn embedding_backward(dy: &CudaStorage, ids: &CudaStorage, v: usize, c: usize) -> Result<CudaStorage> {
    if dy.len != ids.len * c {
        return Err(Error::bad_shape("embedding_backward", &Shape(vec![ids.len, c]), format!("dy holds {} elements", dy.len)));
    }
    layout::index_add(dy, ids, 1, v, c)
}
