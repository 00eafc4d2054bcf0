//! Token embedding: gather rows of a (V, C) table by U32 ids; backward scatter-adds the rows'
//! gradients into a (V, C) zero table in id order, so it is deterministic (kernels/embedding.cu
//! does the same with a sort-free segmented sum).

use crate::autograd::Op;
use crate::backend;
use crate::tensor::{view::check_ids, Shape, Tensor};
use crate::{Error, Result};

impl Tensor {
    /// table: (V, C), ids: U32 of any shape S -> (S..., C)
    pub fn embedding(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
        if table.rank() != 2 {
            return Err(Error::bad_shape("embedding", table.shape(), "the table must be (V, C)"));
        }
        table.expect_float("embedding")?;
        ids.expect_u32("embedding")?;
        let (v, c) = (table.dims()[0], table.dims()[1]);
        check_ids("embedding", ids, v)?;
        let s = backend::embedding(&table.storage(), &ids.storage(), v, c)?;
        let mut out = ids.dims().to_vec();
        out.push(c);
        Ok(Tensor::from_op(s, Shape(out), Op::Embedding { table: table.clone(), ids: ids.clone() }))
    }
}

/// `d table[v]` = sum of g's rows whose id is v.
pub fn embedding_backward(table: &Tensor, ids: &Tensor, g: &Tensor) -> Result<Tensor> {
    let (v, c) = (table.dims()[0], table.dims()[1]);
    let s = backend::embedding_backward(&g.storage(), &ids.storage(), v, c)?;
    Tensor::from_storage(s, table.shape().clone())
}
