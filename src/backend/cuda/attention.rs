//! Launch wrappers for kernels/attention.cu. Twin: backend/cpu/attention.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};
use crate::backend::AttnDims;

#[allow(clippy::too_many_arguments)]
pub fn attention(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, dims: AttnDims) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "attention", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn attention_backward(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, dout: &CudaStorage, dims: AttnDims) -> Result<Vec<CudaStorage>> {
    Err(Error::NotImplemented { op: "attention_backward", device: "cuda".into() })
}
