//! STUB — to be written (causal softmax attention, GQA). Twin of kernels/attention.cu.
use super::CpuStorage;
use crate::backend::AttnDims;
use crate::{Error, Result};
fn todo(op: &'static str) -> Error { Error::NotImplemented { op, device: "cpu".into() } }
pub fn attention(_q: &CpuStorage, _k: &CpuStorage, _v: &CpuStorage, _d: AttnDims) -> Result<CpuStorage> { Err(todo("attention")) }
pub fn attention_backward(_q: &CpuStorage, _k: &CpuStorage, _v: &CpuStorage, _dout: &CpuStorage, _d: AttnDims) -> Result<Vec<CpuStorage>> { Err(todo("attention_backward")) }
