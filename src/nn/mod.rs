//! Layers: thin structs of parameter tensors with a `forward`. Each layer lists its parameters
//! under their HF names (`visit`), so a model's weights map one to one onto HF checkpoints.
//! Weights are stored (in, out): y = x W. HF's (out, in) Linear weights are transposed at load.

mod attention;
mod linear;
mod mlp;
mod norm;

pub use attention::{AttnKind, Attention, KvCache, Qkv};
pub use linear::{adapter_rows, AdapterRowsGuard, Linear, LoraAdapter, LoraConfig, MultiLora};
pub use mlp::Mlp;
pub use norm::Norm;

use crate::tensor::Tensor;

/// (HF name, tensor) pairs, in a fixed order.
pub type NamedParams = Vec<(String, Tensor)>;

/// Deterministic parameter initialisation: every tensor gets its own Philox stream.
pub struct Init {
    pub seed: u64,
    next_stream: u32,
    /// zeros instead of random values (a skeleton to load weights into)
    placeholder: bool,
}

impl Init {
    pub fn new(seed: u64) -> Self {
        Init { seed, next_stream: 0, placeholder: false }
    }
    /// Every tensor zero (allocated lazily by the OS: untouched zero pages cost no memory).
    pub fn placeholder() -> Self {
        Init { seed: 0, next_stream: 0, placeholder: true }
    }
    /// Normal(0, std^2) of the given shape, on a fresh stream.
    pub fn normal(&mut self, shape: &[usize], std: f32) -> crate::Result<Tensor> {
        self.next_stream += 1;
        if self.placeholder {
            return Tensor::zeros(shape.to_vec(), crate::tensor::DType::F32, crate::tensor::Device::Cpu);
        }
        Tensor::randn(shape.to_vec(), std, self.seed, self.next_stream)
    }
    /// Uniform(-bound, bound), on a fresh stream.
    pub fn uniform(&mut self, shape: &[usize], bound: f32) -> crate::Result<Tensor> {
        self.next_stream += 1;
        if self.placeholder {
            return Tensor::zeros(shape.to_vec(), crate::tensor::DType::F32, crate::tensor::Device::Cpu);
        }
        Tensor::uniform(shape.to_vec(), -bound, bound, self.seed, self.next_stream)
    }
}
