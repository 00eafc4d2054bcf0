// kernels/rope.cu: not written yet (see backend/cpu/rope.rs for the spec).
