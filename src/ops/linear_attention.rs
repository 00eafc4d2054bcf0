//! STUB — to be written: Tensor::linear_attention (naive and chunked) and backwards.
use crate::tensor::Tensor;
use crate::{Error, Result};
fn todo(op: &'static str) -> Error { Error::NotImplemented { op, device: "cpu".into() } }
pub fn backward(_q: &Tensor, _k: &Tensor, _v: &Tensor, _s0: Option<&Tensor>, _g: &Tensor, _chunked: bool) -> Result<Vec<Option<Tensor>>> { Err(todo("linear_attention")) }
pub fn state_backward(_k: &Tensor, _v: &Tensor, _s0: Option<&Tensor>, _g: &Tensor) -> Result<Vec<Option<Tensor>>> { Err(todo("linear_attention_state")) }
