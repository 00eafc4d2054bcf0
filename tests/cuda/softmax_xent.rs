//! parity_softmax_xent_*: not written yet.
