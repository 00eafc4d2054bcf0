// kernels/adamw.cu: not written yet (see backend/cpu/adamw.rs for the spec).
