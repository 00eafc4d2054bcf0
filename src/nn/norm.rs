//! Normalisation layers: RMSNorm (Llama; Zhang & Sennrich 2019) and LayerNorm (GPT-2; Ba et al.
//! 2016), over the last axis, as the fused ops of src/ops/norm.rs.

use super::NamedParams;
use crate::tensor::{DType, Device, Tensor};
use crate::Result;

#[derive(Clone, Debug)]
pub enum Norm {
    Rms { weight: Tensor, eps: f64 },
    Layer { weight: Tensor, bias: Tensor, eps: f64 },
}

impl Norm {
    pub fn rms(c: usize, eps: f64) -> Result<Self> {
        Ok(Norm::Rms { weight: Tensor::ones([c], DType::F32, Device::Cpu)?, eps })
    }
    pub fn layer(c: usize, eps: f64) -> Result<Self> {
        Ok(Norm::Layer { weight: Tensor::ones([c], DType::F32, Device::Cpu)?, bias: Tensor::zeros([c], DType::F32, Device::Cpu)?, eps })
    }
    /// x: (.., C) -> (.., C)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Norm::Rms { weight, eps } => x.rms_norm(weight, *eps),
            Norm::Layer { weight, bias, eps } => x.layer_norm(weight, bias, *eps),
        }
    }
    pub fn visit(&self, prefix: &str, out: &mut NamedParams) {
        match self {
            Norm::Rms { weight, .. } => out.push((format!("{prefix}.weight"), weight.clone())),
            Norm::Layer { weight, bias, .. } => {
                out.push((format!("{prefix}.weight"), weight.clone()));
                out.push((format!("{prefix}.bias"), bias.clone()));
            }
        }
    }
}
