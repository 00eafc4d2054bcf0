//! parity_rope_*: not written yet.
