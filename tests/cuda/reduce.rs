//! parity_reduce_*: not written yet.
