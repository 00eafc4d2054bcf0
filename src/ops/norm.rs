//! STUB — to be written: Tensor::rms_norm / layer_norm and backwards.
use crate::tensor::Tensor;
use crate::{Error, Result};
fn todo(op: &'static str) -> Error { Error::NotImplemented { op, device: "cpu".into() } }
pub fn rms_norm_backward(_x: &Tensor, _w: &Tensor, _g: &Tensor, _eps: f64) -> Result<Vec<Option<Tensor>>> { Err(todo("rms_norm_backward")) }
pub fn layer_norm_backward(_x: &Tensor, _w: &Tensor, _b: &Tensor, _g: &Tensor, _eps: f64) -> Result<Vec<Option<Tensor>>> { Err(todo("layer_norm_backward")) }
