// kernels/softmax_xent.cu: not written yet (see backend/cpu/softmax_xent.rs for the spec).
