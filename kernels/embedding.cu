// kernels/embedding.cu: not written yet (see backend/cpu/embedding.rs for the spec).
