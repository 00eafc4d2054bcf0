//! Launch wrappers for kernels/linear_attention.cu. Twin: backend/cpu/linear_attention.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};
use crate::backend::LinAttnDims;

#[allow(clippy::too_many_arguments)]
pub fn linear_attention(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dims: LinAttnDims, chunked: bool) -> Result<Vec<CudaStorage>> {
    Err(Error::NotImplemented { op: "linear_attention", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn linear_attention_backward(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dout: &CudaStorage, dims: LinAttnDims, chunked: bool) -> Result<Vec<CudaStorage>> {
    Err(Error::NotImplemented { op: "linear_attention_backward", device: "cuda".into() })
}
