//! parity_sampling_*: not written yet.
