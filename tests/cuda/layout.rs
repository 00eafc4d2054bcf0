//! parity_layout_*: not written yet.
