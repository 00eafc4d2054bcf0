// kernels/lora.cu: not written yet (see backend/cpu/lora.rs for the spec).
