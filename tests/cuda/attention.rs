//! parity_attention_*: not written yet.
