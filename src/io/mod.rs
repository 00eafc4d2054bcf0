//! Real file formats: safetensors tensors (memory-mapped) and the mapping between HF parameter
//! names/layouts and kiln's. HF config.json / tokenizer.json and PEFT adapters build on these.

pub mod hf;
pub mod safetensors;
