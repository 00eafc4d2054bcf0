//! Launch wrappers for kernels/adamw.cu. Twin: backend/cpu/adamw.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};
use crate::backend::AdamWStep;

#[allow(clippy::too_many_arguments)]
pub fn adamw(p: &CudaStorage, g: &CudaStorage, m: &CudaStorage, v: &CudaStorage, h: AdamWStep) -> Result<Vec<CudaStorage>> {
    Err(Error::NotImplemented { op: "adamw", device: "cuda".into() })
}
