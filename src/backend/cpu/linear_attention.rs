//! STUB — to be written (causal linear attention, naive and chunked). Twin of kernels/linear_attention.cu.
use super::CpuStorage;
use crate::backend::LinAttnDims;
use crate::{Error, Result};
fn todo(op: &'static str) -> Error { Error::NotImplemented { op, device: "cpu".into() } }
pub fn linear_attention(_q: &CpuStorage, _k: &CpuStorage, _v: &CpuStorage, _s0: Option<&CpuStorage>, _d: LinAttnDims, _chunked: bool) -> Result<Vec<CpuStorage>> { Err(todo("linear_attention")) }
pub fn linear_attention_backward(_q: &CpuStorage, _k: &CpuStorage, _v: &CpuStorage, _s0: Option<&CpuStorage>, _dout: &CpuStorage, _d: LinAttnDims, _chunked: bool) -> Result<Vec<CpuStorage>> { Err(todo("linear_attention_backward")) }
