// kernels/layout.cu: not written yet (see backend/cpu/layout.rs for the spec).
