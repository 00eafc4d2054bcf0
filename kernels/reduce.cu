// kernels/reduce.cu: not written yet (see backend/cpu/reduce.rs for the spec).
