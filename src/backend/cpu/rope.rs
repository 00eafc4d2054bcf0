//! STUB — to be written (rotary position embedding). Twin of kernels/rope.cu.
use super::CpuStorage;
use crate::{Error, Result};
#[allow(clippy::too_many_arguments)]
pub fn rope(_x: &CpuStorage, _positions: &[u32], _inv_freq: &[f32], _b: usize, _h: usize, _t: usize, _d: usize, _inverse: bool) -> Result<CpuStorage> { Err(Error::NotImplemented { op: "rope", device: "cpu".into() }) }
