//! parity_linear_attention_*: not written yet.
