//! Launch wrappers for kernels/rope.cu. Twin: backend/cpu/rope.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};

#[allow(clippy::too_many_arguments)]
pub fn rope(x: &CudaStorage, positions: &CudaStorage, inv_freq: &[f32], b: usize, h: usize, t: usize, d: usize, inverse: bool) -> Result<CudaStorage> {
    Err(Error::NotImplemented { op: "rope", device: "cuda".into() })
}
