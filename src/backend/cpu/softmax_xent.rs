//! STUB — to be written (softmax, log-softmax, fused cross-entropy). Twin of kernels/softmax_xent.cu.
use super::CpuStorage;
use crate::{Error, Result};
fn todo(op: &'static str) -> Error { Error::NotImplemented { op, device: "cpu".into() } }
pub fn softmax(_x: &CpuStorage, _n: usize, _c: usize, _log: bool) -> Result<CpuStorage> { Err(todo("softmax")) }
pub fn softmax_backward(_y: &CpuStorage, _dy: &CpuStorage, _n: usize, _c: usize, _log: bool) -> Result<CpuStorage> { Err(todo("softmax_backward")) }
pub fn cross_entropy(_logits: &CpuStorage, _targets: &[u32], _n: usize, _v: usize, _ignore: u32) -> Result<CpuStorage> { Err(todo("cross_entropy")) }
pub fn cross_entropy_backward(_logits: &CpuStorage, _targets: &[u32], _dloss: &CpuStorage, _n: usize, _v: usize, _ignore: u32) -> Result<CpuStorage> { Err(todo("cross_entropy_backward")) }
