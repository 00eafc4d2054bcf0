//! Real file formats: safetensors tensors (memory-mapped) and the mapping between HF parameter
//! names/layouts and kiln's, and atomic writing (temp file + fsync + rename) for checkpoints.
//! HF config.json / tokenizer.json and PEFT adapters build on these.

pub mod checkpoint;
pub mod hf;
pub mod safetensors;
