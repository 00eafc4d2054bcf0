//! Launch wrappers for kernels/reduce.cu. Twin: backend/cpu/reduce.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};
use crate::backend::ReduceOp;

#[allow(clippy::too_many_arguments)]
pub fn reduce(op: ReduceOp, x: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "reduce", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn argmax(x: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "argmax", device: "cuda".into() })
}
