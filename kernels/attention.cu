// kernels/attention.cu: not written yet (see backend/cpu/attention.rs for the spec).
