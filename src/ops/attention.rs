//! STUB — to be written: Tensor::attention (causal, GQA) and its backward.
use crate::tensor::Tensor;
use crate::{Error, Result};
pub fn attention_backward(_q: &Tensor, _k: &Tensor, _v: &Tensor, _g: &Tensor, _scale: f64) -> Result<Vec<Option<Tensor>>> { Err(Error::NotImplemented { op: "attention", device: "cpu".into() }) }
