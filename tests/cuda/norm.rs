//! parity_norm_*: not written yet.
