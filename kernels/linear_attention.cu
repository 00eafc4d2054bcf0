// kernels/linear_attention.cu: not written yet (see backend/cpu/linear_attention.rs for the spec).
