//! STUB — to be written (RMSNorm, LayerNorm). Twin of kernels/norm.cu.
use super::CpuStorage;
use crate::{Error, Result};
fn todo(op: &'static str) -> Error { Error::NotImplemented { op, device: "cpu".into() } }
pub fn rms_norm(_x: &CpuStorage, _w: &CpuStorage, _n: usize, _c: usize, _eps: f64) -> Result<CpuStorage> { Err(todo("rms_norm")) }
pub fn rms_norm_backward(_x: &CpuStorage, _w: &CpuStorage, _dy: &CpuStorage, _n: usize, _c: usize, _eps: f64) -> Result<Vec<CpuStorage>> { Err(todo("rms_norm_backward")) }
pub fn layer_norm(_x: &CpuStorage, _w: &CpuStorage, _b: &CpuStorage, _n: usize, _c: usize, _eps: f64) -> Result<CpuStorage> { Err(todo("layer_norm")) }
pub fn layer_norm_backward(_x: &CpuStorage, _w: &CpuStorage, _dy: &CpuStorage, _n: usize, _c: usize, _eps: f64) -> Result<Vec<CpuStorage>> { Err(todo("layer_norm_backward")) }
