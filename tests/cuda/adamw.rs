//! parity_adamw_*: not written yet.
