//! Launch wrappers for kernels/embedding.cu. Twin: backend/cpu/embedding.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};

#[allow(clippy::too_many_arguments)]
pub fn embedding(table: &CudaStorage, ids: &CudaStorage, v: usize, c: usize) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "embedding", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn embedding_backward(dy: &CudaStorage, ids: &CudaStorage, v: usize, c: usize) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "embedding_backward", device: "cuda".into() })
}
