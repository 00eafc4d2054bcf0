//! parity_lora_*: not written yet.
