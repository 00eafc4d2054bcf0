//! Launch wrappers for kernels/norm.cu. Twin: backend/cpu/norm.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};

#[allow(clippy::too_many_arguments)]
pub fn rms_norm(x: &CudaStorage, w: &CudaStorage, n: usize, c: usize, eps: f64) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "rms_norm", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn rms_norm_backward(x: &CudaStorage, w: &CudaStorage, dy: &CudaStorage, n: usize, c: usize, eps: f64) -> Result<Vec<CudaStorage>> {
    Err(Error::NotImplemented { op: "rms_norm_backward", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn layer_norm(x: &CudaStorage, w: &CudaStorage, b: &CudaStorage, n: usize, c: usize, eps: f64) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "layer_norm", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(x: &CudaStorage, w: &CudaStorage, dy: &CudaStorage, n: usize, c: usize, eps: f64) -> Result<Vec<CudaStorage>> {
    Err(Error::NotImplemented { op: "layer_norm_backward", device: "cuda".into() })
}
