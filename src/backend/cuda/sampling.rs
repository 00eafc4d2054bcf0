//! Launch wrappers for kernels/sampling.cu. Twin: backend/cpu/sampling.rs.
//! (Not written yet: each op reports NotImplemented until its kernel lands.)

#![allow(unused_variables)]

use super::CudaStorage;
use crate::{Error, Result};
use crate::sample::SamplingParams;

#[allow(clippy::too_many_arguments)]
pub fn sample(logits: &CudaStorage, v: usize, params: &[SamplingParams], seed: u64, rows: &[u32], step: u32) -> Result<Vec<u32>> {
    Err(Error::NotImplemented { op: "sample", device: "cuda".into() })
}
