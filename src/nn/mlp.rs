//! The feed-forward block: SwiGLU (Llama: down(silu(gate x) * up x)) or GELU (GPT-2:
//! c_proj(gelu(c_fc x))).

use super::{Linear, NamedParams};
use crate::tensor::Tensor;
use crate::Result;

#[derive(Clone, Debug)]
pub enum Mlp {
    SwiGlu { gate: Linear, up: Linear, down: Linear },
    Gelu { c_fc: Linear, c_proj: Linear },
}

impl Mlp {
    /// x: (B, T, C) -> (B, T, C)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Mlp::SwiGlu { gate, up, down } => down.forward(&Tensor::swiglu(&gate.forward(x)?, &up.forward(x)?)?),
            Mlp::Gelu { c_fc, c_proj } => c_proj.forward(&c_fc.forward(x)?.gelu()?),
        }
    }
    /// The linear layers by their short names (for LoRA targeting).
    pub fn linears_mut(&mut self) -> Vec<(&'static str, &mut Linear)> {
        match self {
            Mlp::SwiGlu { gate, up, down } => vec![("gate", gate), ("up", up), ("down", down)],
            Mlp::Gelu { c_fc, c_proj } => vec![("c_fc", c_fc), ("c_proj", c_proj)],
        }
    }
    pub fn visit(&self, prefix: &str, out: &mut NamedParams) {
        match self {
            Mlp::SwiGlu { gate, up, down } => {
                gate.visit(&format!("{prefix}.gate_proj"), out);
                up.visit(&format!("{prefix}.up_proj"), out);
                down.visit(&format!("{prefix}.down_proj"), out);
            }
            Mlp::Gelu { c_fc, c_proj } => {
                c_fc.visit(&format!("{prefix}.c_fc"), out);
                c_proj.visit(&format!("{prefix}.c_proj"), out);
            }
        }
    }
}
