//! The fused ops: each file holds the Tensor-level forward (shape checks, one backend call, the
//! recorded Op) and the backward that autograd/backward.rs calls. Names match kernels/*.cu and
//! backend/cpu/*.rs one to one.

pub mod attention;
pub mod embedding;
pub mod linear_attention;
pub mod linear_attention_unfused;
pub mod linear_attention_varlen;
pub mod lora;
pub mod lora_multi_adapter;
pub mod norm;
pub mod rope;
pub mod softmax_xent;
pub mod swiglu;
