//! STUB — to be written: Tensor::lora (y = x W + s (x A) B as one op) and its backward.
use crate::tensor::Tensor;
use crate::{Error, Result};
pub fn backward(_x: &Tensor, _w: &Tensor, _a: &Tensor, _b: &Tensor, _g: &Tensor, _scale: f64) -> Result<Vec<Option<Tensor>>> { Err(Error::NotImplemented { op: "lora", device: "cpu".into() }) }
