// kernels/matmul.cu: not written yet (see backend/cpu/matmul.rs for the spec).
