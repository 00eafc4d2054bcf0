//! parity_embedding_*: not written yet.
