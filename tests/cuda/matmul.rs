//! parity_matmul_*: not written yet.
