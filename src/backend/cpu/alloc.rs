//! Keep freed memory in the process. A training step allocates and frees the same few-MB
//! activation buffers every step; glibc's defaults hand such blocks back to the kernel (mmap for
//! large blocks, trimming the heap top), so each step pays again for page faults and zeroing:
//! a quarter of workload a's time (../shared/baselines) before this. Binaries call
//! `keep_freed_memory()` once at start; a library user may too.

/// Serve blocks up to 32 MiB (glibc's ceiling for this setting) from the heap and never trim it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Other allocators keep their own policies.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}
