//! Launch wrappers for kernels/matmul.cu. Twin: backend/cpu/matmul.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};

#[allow(clippy::too_many_arguments)]
pub fn matmul(a: &CudaStorage, b: &CudaStorage, batch: usize, b_batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "matmul", device: "cuda".into() })
}
