//! STUB — to be written: Tensor::rope and its inverse.
use crate::tensor::Tensor;
use crate::{Error, Result};
pub fn rope_inverse(_g: &Tensor, _positions: &Tensor, _inv_freq: &[f32]) -> Result<Tensor> { Err(Error::NotImplemented { op: "rope", device: "cpu".into() }) }
