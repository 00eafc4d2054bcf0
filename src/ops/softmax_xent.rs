//! STUB — to be written: Tensor::softmax / log_softmax (last axis), Tensor::cross_entropy, and backwards.
use crate::tensor::Tensor;
use crate::{Error, Result};
fn todo(op: &'static str) -> Error { Error::NotImplemented { op, device: "cpu".into() } }
pub fn softmax_backward(_x: &Tensor, _y: &Tensor, _g: &Tensor, _log: bool) -> Result<Tensor> { Err(todo("softmax_backward")) }
pub fn cross_entropy_backward(_logits: &Tensor, _targets: &Tensor, _g: &Tensor, _ignore: u32) -> Result<Tensor> { Err(todo("cross_entropy_backward")) }
