//! Launch wrappers for kernels/softmax_xent.cu. Twin: backend/cpu/softmax_xent.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};

#[allow(clippy::too_many_arguments)]
pub fn softmax(x: &CudaStorage, n: usize, c: usize, log: bool) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "softmax", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn softmax_backward(y: &CudaStorage, dy: &CudaStorage, n: usize, c: usize, log: bool) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "softmax_backward", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn cross_entropy(logits: &CudaStorage, targets: &CudaStorage, n: usize, v: usize, ignore: u32) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "cross_entropy", device: "cuda".into() })
}

#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward(logits: &CudaStorage, targets: &CudaStorage, dloss: &CudaStorage, n: usize, v: usize, ignore: u32) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "cross_entropy_backward", device: "cuda".into() })
}
