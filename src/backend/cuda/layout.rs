//! Launch wrappers for kernels/layout.cu. Twin: backend/cpu/layout.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};
use crate::tensor::Shape;

#[allow(clippy::too_many_arguments)]
pub fn permute(x: &CudaStorage, shape: &Shape, perm: &[usize]) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "permute", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn narrow(x: &CudaStorage, outer: usize, dim: usize, inner: usize, start: usize, len: usize) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "narrow", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn concat(parts: &[&CudaStorage], outer: usize, dims: &[usize], inner: usize) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "concat", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn index_select(x: &CudaStorage, ids: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "index_select", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn index_add(dy: &CudaStorage, ids: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "index_add", device: "cuda".into() })
}
