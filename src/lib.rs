//! kiln: a minimal engine for language-model research.
//!
//! Crate map (data flows one way, top to bottom):
//!   bench/      `kiln bench --suite ...`: timed workloads checked against known answers
//!   methods/    one folder per research method (scaling_laws, ...) and `kiln repro`
//!   report/     run directories: atomic report.json / report.md writes, PNG plots (plotters)
//!   train/      tokenizers, datasets, Trainer, eval, JSONL metrics, atomic checkpoints + resume
//!   model/      Config + Transformer (Llama- and GPT-2-style decoders)
//!   nn/         layers: Linear (+ LoRA), Norm, Attention (softmax | linear), Mlp
//!   linalg/     dense numerics on f64 slices (the only faer user besides matmul): least squares,
//!               L-BFGS, bounded non-linear least squares, Huber loss, logistic regression
//!   ops/        fused ops at the Tensor level (softmax + cross-entropy, norms, RoPE, embedding,
//!               attention, linear attention, LoRA), each with its hand-written backward
//!   autograd/   Op enum, backward (topological sort + one match), gradcheck
//!   tensor/     Tensor handle, Shape, DType, Device; views and arithmetic
//!   backend/    enum Storage { Cpu, Cuda }: the one place ops dispatch; cpu/ is the spec
//!   rng         counter-based Philox4x32-10, shared bit for bit with the CUDA kernels
//!
//! Dimension legend used in every shape comment:
//!   B batch, T time, C channels, H heads, D head dim, V vocab, R LoRA rank, N rows,
//!   K reduction dim, M output dim.

// `!(x > 0.0)` is how kiln rejects NaN together with out-of-range values: deliberate, wherever
// clippy would rewrite it.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod autograd;
pub mod backend;
pub mod bench;
pub mod error;
pub mod io;
pub mod linalg;
pub mod methods;
pub mod model;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod report;
pub mod rng;
pub mod sample;
pub mod tensor;
pub mod train;

pub use autograd::{backward, no_grad, Grads};
pub use error::{Error, Result};
pub use tensor::{DType, Device, Shape, Tensor};
