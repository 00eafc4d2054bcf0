//! The emulated CUDA device (`KILN_CUDA_EMU=1`, feature `emu`): kernels/*.cu compiled as C++ by
//! build.rs and run on the CPU by kernels/emu_rt.cpp, behind the same `Dev` API as a real GPU, so
//! the launch wrappers and the parity tests in tests/cuda run unchanged (kernels/README.md).
//! "Device memory" is host memory: a buffer's device pointer is its host address, copies are
//! memcpy, and a launch is a call into the C++ launcher, which runs the whole grid before it returns.

use super::runtime::Arg;
use crate::{Error, Result};
use std::alloc::Layout;
use std::ffi::{c_char, c_int, c_void, CStr, CString};

extern "C" {
    fn kiln_emu_has(family: *const c_char, kernel: *const c_char) -> c_int;
    fn kiln_emu_launch(
        family: *const c_char,
        kernel: *const c_char,
        grid: *const u32,
        block: *const u32,
        smem: u32,
        cluster: u32,
        params: *mut *mut c_void,
        sizes: *const u32,
        nparams: u32,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
}

/// Is the emulated device asked for (KILN_CUDA_EMU=1)?
pub fn requested() -> bool {
    std::env::var("KILN_CUDA_EMU").map(|v| v == "1").unwrap_or(false)
}

/// What `Dev::func` returns on the emulated device.
#[derive(Clone, Debug)]
pub struct Kernel {
    family: CString,
    name: CString,
}

/// Kernel `name` of `kernels/<family>.cu`, or an error naming what is missing.
pub fn kernel(family: &str, name: &str) -> Result<Kernel> {
    let k = Kernel { family: CString::new(family).unwrap(), name: CString::new(name).unwrap() };
    // SAFETY: two NUL-terminated strings; the lookup only reads them.
    if unsafe { kiln_emu_has(k.family.as_ptr(), k.name.as_ptr()) } == 0 {
        return Err(Error::Cuda(format!("kernel {name} in kernels/{family}.cu: not found in the emulated build")));
    }
    Ok(k)
}

/// Run `k` over the whole grid on the calling thread; returns when every block has finished.
/// `cluster`: blocks per cluster along x (1 or 2; the kernel's `__cluster_dims__` on a GPU).
pub fn launch(k: &Kernel, grid: (u32, u32, u32), block: (u32, u32, u32), smem: u32, cluster: u32, args: &[Arg]) -> Result<()> {
    let mut vals: Vec<Arg> = args.to_vec();
    let sizes: Vec<u32> = vals
        .iter()
        .map(|a| match a {
            Arg::Ptr(_) | Arg::U64(_) => 8,
            Arg::U32(_) | Arg::I32(_) | Arg::F32(_) => 4,
            Arg::Words(_) => 128,
        })
        .collect();
    let mut params: Vec<*mut c_void> = vals.iter_mut().map(Arg::param_ptr).collect();
    let (g, b) = ([grid.0, grid.1, grid.2], [block.0, block.1, block.2]);
    let mut err = vec![0 as c_char; 1024];
    // SAFETY: `params` points into `vals` and `sizes` has one entry per parameter; the launcher
    // checks the count and sizes against the kernel's signature before it reads them, and runs
    // the kernel to completion before returning.
    let rc = unsafe {
        kiln_emu_launch(
            k.family.as_ptr(),
            k.name.as_ptr(),
            g.as_ptr(),
            b.as_ptr(),
            smem,
            cluster,
            params.as_mut_ptr(),
            sizes.as_ptr(),
            params.len() as u32,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if rc != 0 {
        // SAFETY: the launcher wrote a NUL-terminated message into `err`.
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
        return Err(Error::Cuda(format!("emulated launch of {}: {msg}", k.name.to_string_lossy())));
    }
    Ok(())
}

/// Buffers are 256-byte aligned, like cudaMalloc's.
fn layout(bytes: usize) -> Layout {
    Layout::from_size_align(bytes, 256).unwrap()
}

/// A host allocation standing in for device memory; its address is the device pointer.
pub fn alloc(bytes: usize) -> Result<u64> {
    if bytes == 0 {
        return Ok(0);
    }
    // SAFETY: a non-zero size; freed by `free` with the same layout.
    let p = unsafe { std::alloc::alloc(layout(bytes)) };
    if p.is_null() {
        return Err(Error::Cuda(format!("emulated device: allocating {bytes} bytes failed")));
    }
    Ok(p as u64)
}

/// # Safety
/// `ptr` came from `alloc(bytes)` and is not used afterwards.
pub unsafe fn free(ptr: u64, bytes: usize) {
    if ptr != 0 {
        std::alloc::dealloc(ptr as *mut u8, layout(bytes));
    }
}

/// # Safety
/// `[ptr, ptr + bytes)` lies inside one live emulated allocation.
pub unsafe fn memset(ptr: u64, byte: u8, bytes: usize) {
    std::ptr::write_bytes(ptr as *mut u8, byte, bytes);
}

/// # Safety
/// Both ranges lie inside live allocations (host or emulated) and do not overlap.
pub unsafe fn memcpy(dst: u64, src: u64, bytes: usize) {
    std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, bytes);
}
