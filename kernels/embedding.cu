// kernels/embedding.cu: intentionally empty. The embedding gather and its deterministic
// scatter-add backward are index_select / index_add with outer = 1, so their kernels live in
// kernels/layout.cu (gather_*, bucket_*, index_add_*), exactly as backend/cpu/embedding.rs calls
// backend/cpu/layout.rs. backend/cuda/embedding.rs checks the shapes and calls backend/cuda/layout.rs.
//
// table: (V, C), ids: (N) -> (N, C); backward: dy (N, C), ids (N) -> dtable (V, C), each row the
// sum of its dy rows in increasing N (no float atomics), ids >= V skipped (never read or written).
