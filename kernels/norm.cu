// kernels/norm.cu: not written yet (see backend/cpu/norm.rs for the spec).
