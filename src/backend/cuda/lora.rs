//! Launch wrappers for kernels/lora.cu. Twin: backend/cpu/lora.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};
use crate::backend::LoraDims;

#[allow(clippy::too_many_arguments)]
pub fn lora(x: &CudaStorage, w: &CudaStorage, a: &CudaStorage, b: &CudaStorage, dims: LoraDims) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "lora", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn lora_backward(x: &CudaStorage, w: &CudaStorage, a: &CudaStorage, b: &CudaStorage, dy: &CudaStorage, dims: LoraDims, need_dx: bool, need_dw: bool) -> Result<Vec<Option<CudaStorage>>> {
    Err(Error::NotImplemented { op: "lora_backward", device: "cuda".into() })
}
