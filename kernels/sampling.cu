// kernels/sampling.cu: not written yet (see backend/cpu/sampling.rs for the spec).
