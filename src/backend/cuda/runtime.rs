//! One `Dev` per GPU: its context and stream, the NVRTC module cache, device buffers from the
//! driver's stream-ordered pool, and the launch call every wrapper in backend/cuda goes through.
//!
//! Buffers come from `cuMemAllocAsync` on the default memory pool, whose release threshold is
//! raised to "never" at start: a freed buffer goes back to the pool, not to the driver, so a
//! training step re-uses the same memory and never calls cudaMalloc in steady state.
//!
//! Two environment switches help debugging and testing:
//! - `KILN_CUDA_POISON=1` fills every new buffer with 0xFF bytes (a NaN in f32 and bf16), so a
//!   kernel that forgets to write an element fails its parity test.
//! - `KILN_CUDA_SYNC=1` synchronises after every launch, so an error names the kernel that caused it.
//!
//! With the `emu` feature, `KILN_CUDA_EMU=1` makes every `Dev` the emulated device of emu.rs: the
//! same API, with host memory for device memory and kernels compiled as C++ run on the CPU. Each
//! method below then takes the one branch marked "emulated"; the real-GPU code is untouched.

use super::kernels;
use crate::{Error, Result};
use cudarc::driver::{result as cu, sys, CudaContext, CudaFunction, CudaModule, CudaStream};
use std::collections::HashMap;
use std::ffi::c_void;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

/// A part of `Dev` that only a real GPU has (its context and stream): it dereferences like the
/// value itself, and panics with a clear message on the emulated device, which has neither.
pub struct RealOnly<T>(Option<T>);

impl<T> Deref for RealOnly<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("the emulated CUDA device (KILN_CUDA_EMU=1) has no CUDA context or stream")
    }
}

/// A kernel, as `Dev::func` finds it and `Dev::launch` takes it.
#[derive(Clone)]
pub enum Func {
    Cuda(CudaFunction),
    #[cfg(feature = "emu")]
    Emu(super::emu::Kernel),
}

/// A GPU as the backend sees it.
pub struct Dev {
    pub ordinal: usize,
    pub ctx: RealOnly<Arc<CudaContext>>,
    pub stream: RealOnly<Arc<CudaStream>>,
    /// Compute capability (major, minor).
    pub cc: (i32, i32),
    pub sm_count: u32,
    /// Most shared memory one block may opt into (static + dynamic, bytes): 227 KiB on sm_90,
    /// 163 KiB on sm_80, 99 KiB on sm_86 (CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN).
    pub smem_optin: u32,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    funcs: Mutex<HashMap<(&'static str, String), CudaFunction>>,
    /// resident_blocks / resident_clusters answers by (kernel handle, threads, dynamic shared bytes,
    /// blocks a cluster; 0 for blocks): decode steps ask on every launch, and the driver's occupancy
    /// calculator is not free.
    resident: Mutex<HashMap<(usize, u32, u32, u32), u32>>,
    poison: bool,
    sync: bool,
}

impl std::fmt::Debug for Dev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let emu = if self.is_emu() { ", emulated" } else { "" };
        write!(f, "cuda:{} (sm_{}{}{emu})", self.ordinal, self.cc.0, self.cc.1)
    }
}

fn cuda_err(what: impl std::fmt::Display, e: impl std::fmt::Debug) -> Error {
    Error::Cuda(format!("{what}: {e:?}"))
}

/// The `Dev` for one ordinal, created on first use and kept for the life of the process.
pub fn dev(ordinal: usize) -> Result<Arc<Dev>> {
    static DEVS: OnceLock<Mutex<HashMap<usize, Arc<Dev>>>> = OnceLock::new();
    let mut devs = DEVS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = devs.get(&ordinal) {
        return Ok(d.clone());
    }
    let flag = |k: &str| std::env::var(k).map(|v| v == "1").unwrap_or(false);
    #[cfg(feature = "emu")]
    if super::emu::requested() {
        // emulated: no context or stream; compute capability 8.0 (mma.sync, ldmatrix, cp.async)
        let d = Arc::new(Dev {
            ordinal,
            ctx: RealOnly(None),
            stream: RealOnly(None),
            cc: (8, 0),
            sm_count: 4,
            smem_optin: 163 * 1024, // as sm_80 (the emulator's buffer holds 227 KiB)
            modules: Default::default(),
            funcs: Default::default(),
            resident: Default::default(),
            poison: flag("KILN_CUDA_POISON"),
            sync: false,
        });
        devs.insert(ordinal, d.clone());
        return Ok(d);
    }
    let ctx = super::context(ordinal)?;
    // One stream per device: the engine never shares a buffer across streams, so cudarc's
    // per-buffer event tracking is pure overhead.
    // SAFETY: no CudaSlice exists on this context yet.
    unsafe { ctx.disable_event_tracking() };
    let stream = ctx.default_stream();
    let cc = ctx.compute_capability().map_err(|e| cuda_err("compute capability", e))?;
    let sm_count = ctx
        .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .map_err(|e| cuda_err("multiprocessor count", e))? as u32;
    let smem_optin = ctx
        .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
        .map_err(|e| cuda_err("opt-in shared memory per block", e))? as u32;
    // SAFETY: plain driver calls on the device this context was made for.
    unsafe {
        let pool = cu::device::get_default_mem_pool(ctx.cu_device()).map_err(|e| cuda_err("default memory pool", e))?;
        let mut threshold = u64::MAX;
        cu::mem_pool::set_attribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            &mut threshold as *mut u64 as *mut c_void,
        )
        .map_err(|e| cuda_err("memory pool release threshold", e))?;
    }
    let d = Arc::new(Dev {
        ordinal,
        ctx: RealOnly(Some(ctx)),
        stream: RealOnly(Some(stream)),
        cc,
        sm_count,
        smem_optin,
        modules: Default::default(),
        funcs: Default::default(),
        resident: Default::default(),
        poison: flag("KILN_CUDA_POISON"),
        sync: flag("KILN_CUDA_SYNC"),
    });
    devs.insert(ordinal, d.clone());
    Ok(d)
}

/// Lets `f` take `smem` dynamic shared bytes: above 48 KiB the kernel must opt in.
fn allow_smem(f: &CudaFunction, smem: u32) -> Result<()> {
    if smem > 48 * 1024 {
        f.set_attribute(sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
            .map_err(|e| cuda_err("raising the shared-memory limit", e))?;
    }
    Ok(())
}

/// A kernel argument, kept by value until the launch call copies it.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    Ptr(sys::CUdeviceptr),
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    /// A 128-byte struct of 32 words passed by value (e.g. broadcast layouts).
    Words([u32; 32]),
}

impl Arg {
    /// The address cuLaunchKernel (and the emulator) reads this parameter's bytes from.
    pub fn param_ptr(&mut self) -> *mut c_void {
        match self {
            Arg::Ptr(p) => p as *mut u64 as *mut c_void,
            Arg::U32(v) => v as *mut u32 as *mut c_void,
            Arg::I32(v) => v as *mut i32 as *mut c_void,
            Arg::U64(v) => v as *mut u64 as *mut c_void,
            Arg::F32(v) => v as *mut f32 as *mut c_void,
            Arg::Words(w) => w.as_mut_ptr() as *mut c_void,
        }
    }
}

impl Dev {
    /// Is this the emulated device (KILN_CUDA_EMU=1)?
    pub fn is_emu(&self) -> bool {
        self.ctx.0.is_none()
    }

    /// The NVRTC target for this device: compute_XY (PTX, finalised by the driver at load).
    pub fn arch(&self) -> String {
        format!("compute_{}{}", self.cc.0, self.cc.1)
    }

    /// Kernel `name` of `kernels/<family>.cu`, compiling the family on first use.
    pub fn func(&self, family: &'static str, name: &str) -> Result<Func> {
        #[cfg(feature = "emu")]
        if self.is_emu() {
            return super::emu::kernel(family, name).map(Func::Emu); // emulated
        }
        if let Some(f) = self.funcs.lock().unwrap().get(&(family, name.to_string())) {
            return Ok(Func::Cuda(f.clone()));
        }
        let module = {
            let mut mods = self.modules.lock().unwrap();
            match mods.get(family) {
                Some(m) => m.clone(),
                None => {
                    let arch = kernels::arch_for(family, self.cc)?;
                    let (ptx, cached) = super::kernel_cache::ptx(family, &arch)?;
                    let load = |ptx: String| self.ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx));
                    let m = match load(ptx) {
                        // a cached file the driver refuses (damaged on disk): forget it, compile afresh
                        Err(_) if cached => {
                            super::kernel_cache::evict(family, &arch);
                            load(kernels::compile_ptx(family, &arch)?)
                        }
                        r => r,
                    }
                    .map_err(|e| cuda_err(format_args!("loading kernels/{family}.cu on {self:?}"), e))?;
                    mods.insert(family, m.clone());
                    m
                }
            }
        };
        let f = module.load_function(name).map_err(|e| cuda_err(format_args!("kernel {name} in kernels/{family}.cu"), e))?;
        self.funcs.lock().unwrap().insert((family, name.to_string()), f.clone());
        Ok(Func::Cuda(f))
    }

    /// Launch `f` on this device's stream. `smem` above 48 KiB raises the kernel's opt-in limit.
    pub fn launch(&self, f: &Func, grid: (u32, u32, u32), block: (u32, u32, u32), smem: u32, args: &[Arg]) -> Result<()> {
        self.launch_cluster(f, grid, block, smem, 1, args)
    }

    /// As [`Dev::launch`], for a kernel declared with `__cluster_dims__(cluster, 1, 1)`: the GPU
    /// takes the cluster shape from the kernel; the emulator runs each cluster's blocks together.
    pub fn launch_cluster(&self, f: &Func, grid: (u32, u32, u32), block: (u32, u32, u32), smem: u32, cluster: u32, args: &[Arg]) -> Result<()> {
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return Ok(()); // nothing to do (an empty tensor)
        }
        if cluster == 0 || grid.0 % cluster != 0 {
            return Err(Error::Cuda(format!("a grid of {} blocks does not split into clusters of {cluster}", grid.0)));
        }
        let f = match f {
            Func::Cuda(f) => f,
            #[cfg(feature = "emu")]
            Func::Emu(k) => return super::emu::launch(k, grid, block, smem, cluster, args), // emulated
        };
        allow_smem(f, smem)?;
        let mut vals: Vec<Arg> = args.to_vec();
        let mut params: Vec<*mut c_void> = vals.iter_mut().map(Arg::param_ptr).collect();
        self.ctx.bind_to_thread().map_err(|e| cuda_err("binding the context", e))?;
        // SAFETY: `params` points into `vals`, alive until the call returns (the driver copies
        // the parameters at launch); the wrappers pass the argument list each kernel declares.
        unsafe { cu::launch_kernel(f.cu_function(), grid, block, smem, self.stream.cu_stream(), &mut params) }
            .map_err(|e| cuda_err("kernel launch", e))?;
        if self.sync {
            self.synchronize()?;
        }
        Ok(())
    }

    /// Blocks of `f` resident at once on the whole GPU at `threads` a block and `smem` dynamic
    /// shared bytes (the driver's occupancy calculator x SMs; at least one per SM). A kernel that
    /// walks its rows with a grid of this size keeps every block busy to the end. Emulated: two
    /// blocks per emulated SM, so a handful of rows already gives each block several.
    pub fn resident_blocks(&self, f: &Func, threads: u32, smem: u32) -> Result<u32> {
        let f = match f {
            Func::Cuda(f) => f,
            #[cfg(feature = "emu")]
            Func::Emu(_) => return Ok(2 * self.sm_count), // emulated
        };
        let key = (f.cu_function() as usize, threads, smem, 0);
        if let Some(&n) = self.resident.lock().unwrap().get(&key) {
            return Ok(n);
        }
        self.ctx.bind_to_thread().map_err(|e| cuda_err("binding the context", e))?;
        allow_smem(f, smem)?;
        let per_sm = f
            .occupancy_max_active_blocks_per_multiprocessor(threads, smem as usize, None)
            .map_err(|e| cuda_err("the occupancy calculator", e))?;
        let n = per_sm.max(1) * self.sm_count;
        self.resident.lock().unwrap().insert(key, n);
        Ok(n)
    }

    /// Clusters of `cluster` blocks of `f` (a kernel with `__cluster_dims__`) resident at once on
    /// the whole GPU, from the driver's cuOccupancyMaxActiveClusters (GPCs need not hold a whole
    /// number of clusters, so this can be below SMs / cluster); at least 1. A persistent grid of
    /// more clusters than this would run its last ones in a second, nearly empty wave. Emulated:
    /// one per `cluster` emulated SMs.
    pub fn resident_clusters(&self, f: &Func, threads: u32, smem: u32, cluster: u32) -> Result<u32> {
        let f = match f {
            Func::Cuda(f) => f,
            #[cfg(feature = "emu")]
            Func::Emu(_) => return Ok((self.sm_count / cluster).max(1)), // emulated
        };
        let key = (f.cu_function() as usize, threads, smem, cluster);
        if let Some(&n) = self.resident.lock().unwrap().get(&key) {
            return Ok(n);
        }
        self.ctx.bind_to_thread().map_err(|e| cuda_err("binding the context", e))?;
        allow_smem(f, smem)?;
        let cfg = sys::CUlaunchConfig {
            gridDimX: cluster * self.sm_count,
            gridDimY: 1,
            gridDimZ: 1,
            blockDimX: threads,
            blockDimY: 1,
            blockDimZ: 1,
            sharedMemBytes: smem,
            hStream: self.stream.cu_stream(),
            attrs: std::ptr::null_mut(),
            numAttrs: 0,
        };
        let mut n: std::ffi::c_int = 0;
        // SAFETY: `cfg` describes a launch of `f` (whose cluster shape is compiled in) on this
        // context's stream; the driver writes one int.
        let r = unsafe { sys::cuOccupancyMaxActiveClusters(&mut n, f.cu_function(), &cfg) };
        if r != sys::CUresult::CUDA_SUCCESS {
            return Err(Error::Cuda(format!("cuOccupancyMaxActiveClusters: {r:?}")));
        }
        let n = (n.max(1)) as u32;
        self.resident.lock().unwrap().insert(key, n);
        Ok(n)
    }

    pub fn synchronize(&self) -> Result<()> {
        if self.is_emu() {
            return Ok(()); // emulated: launches and copies finish before they return
        }
        self.stream.synchronize().map_err(|e| cuda_err(format_args!("synchronising {self:?}"), e))
    }

    /// An uninitialised buffer of `bytes` bytes (0xFF-poisoned under KILN_CUDA_POISON=1).
    pub fn alloc(self: &Arc<Self>, bytes: usize) -> Result<DevBuf> {
        #[cfg(feature = "emu")]
        if self.is_emu() {
            let buf = DevBuf { ptr: super::emu::alloc(bytes)?, bytes, dev: self.clone() }; // emulated
            if self.poison {
                buf.fill_bytes(0xFF)?;
            }
            return Ok(buf);
        }
        self.ctx.bind_to_thread().map_err(|e| cuda_err("binding the context", e))?;
        let ptr = if bytes == 0 {
            0
        } else {
            // SAFETY: a plain stream-ordered allocation; freed in DevBuf::drop on the same stream.
            unsafe { cu::malloc_async(self.stream.cu_stream(), bytes) }
                .map_err(|e| cuda_err(format_args!("allocating {bytes} bytes on {self:?}"), e))?
        };
        let buf = DevBuf { ptr, bytes, dev: self.clone() };
        if self.poison {
            buf.fill_bytes(0xFF)?;
        }
        Ok(buf)
    }

    pub fn alloc_zeros(self: &Arc<Self>, bytes: usize) -> Result<DevBuf> {
        let b = self.alloc(bytes)?;
        b.fill_bytes(0)?;
        Ok(b)
    }

    pub fn upload<T: Copy>(self: &Arc<Self>, host: &[T]) -> Result<DevBuf> {
        let buf = self.alloc(std::mem::size_of_val(host))?;
        #[cfg(feature = "emu")]
        if self.is_emu() {
            // SAFETY (emulated): `buf` holds exactly size_of_val(host) bytes of host memory.
            unsafe { super::emu::memcpy(buf.ptr, host.as_ptr() as u64, buf.bytes) };
            return Ok(buf);
        }
        if buf.bytes > 0 {
            // SAFETY: `buf` holds exactly size_of_val(host) bytes; the sync copy finishes before return.
            unsafe { cu::memcpy_htod_async(buf.ptr, host, self.stream.cu_stream()) }.map_err(|e| cuda_err("host-to-device copy", e))?;
            self.synchronize()?;
        }
        Ok(buf)
    }
}

/// A device allocation, returned to the pool when dropped.
pub struct DevBuf {
    pub ptr: sys::CUdeviceptr,
    pub bytes: usize,
    pub dev: Arc<Dev>,
}

impl std::fmt::Debug for DevBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DevBuf({} bytes on {:?})", self.bytes, self.dev)
    }
}

impl DevBuf {
    pub fn arg(&self) -> Arg {
        Arg::Ptr(self.ptr)
    }
    pub fn fill_bytes(&self, byte: u8) -> Result<()> {
        if self.bytes == 0 {
            return Ok(());
        }
        #[cfg(feature = "emu")]
        if self.dev.is_emu() {
            // SAFETY (emulated): the whole of this allocation.
            unsafe { super::emu::memset(self.ptr, byte, self.bytes) };
            return Ok(());
        }
        // SAFETY: the range lies inside this allocation.
        unsafe { cu::memset_d8_async(self.ptr, byte, self.bytes, self.dev.stream.cu_stream()) }.map_err(|e| cuda_err("memset", e))
    }
    /// Copy the whole buffer to the host as `T`s (waits for the stream).
    pub fn download<T: Copy + Default>(&self) -> Result<Vec<T>> {
        let n = self.bytes / std::mem::size_of::<T>();
        let mut host = vec![T::default(); n];
        #[cfg(feature = "emu")]
        if self.dev.is_emu() {
            // SAFETY (emulated): `host` holds n * size_of::<T>() bytes, all inside this allocation.
            unsafe { super::emu::memcpy(host.as_mut_ptr() as u64, self.ptr, n * std::mem::size_of::<T>()) };
            return Ok(host);
        }
        if n > 0 {
            // SAFETY: `host` holds n * size_of::<T>() == self.bytes bytes.
            unsafe { cu::memcpy_dtoh_async(&mut host, self.ptr, self.dev.stream.cu_stream()) }.map_err(|e| cuda_err("device-to-host copy", e))?;
        }
        self.dev.synchronize()?;
        Ok(host)
    }
    /// Device-to-device copy of `bytes` bytes from `src` (offset `src_off`) to self (offset `dst_off`).
    pub fn copy_from(&self, dst_off: usize, src: &DevBuf, src_off: usize, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        if dst_off + bytes > self.bytes || src_off + bytes > src.bytes {
            return Err(Error::Cuda(format!("device copy out of range: {bytes} bytes at {src_off}->{dst_off} of {}->{}", src.bytes, self.bytes)));
        }
        #[cfg(feature = "emu")]
        if self.dev.is_emu() {
            // SAFETY (emulated): both ranges were checked above; distinct buffers never overlap,
            // and `copy` (memmove) is used for a copy within one buffer.
            unsafe {
                if std::ptr::eq(self, src) {
                    std::ptr::copy((src.ptr + src_off as u64) as *const u8, (self.ptr + dst_off as u64) as *mut u8, bytes);
                } else {
                    super::emu::memcpy(self.ptr + dst_off as u64, src.ptr + src_off as u64, bytes);
                }
            }
            return Ok(());
        }
        // SAFETY: both ranges were checked against their allocations above.
        unsafe { cu::memcpy_dtod_async(self.ptr + dst_off as u64, src.ptr + src_off as u64, bytes, self.dev.stream.cu_stream()) }
            .map_err(|e| cuda_err("device-to-device copy", e))
    }
}

impl Drop for DevBuf {
    fn drop(&mut self) {
        #[cfg(feature = "emu")]
        if self.dev.is_emu() {
            // SAFETY (emulated): allocated by emu::alloc(self.bytes); nothing uses it after the drop.
            unsafe { super::emu::free(self.ptr, self.bytes) };
            return;
        }
        if self.ptr != 0 {
            // SAFETY: allocated by malloc_async on this stream; nothing uses it after the drop.
            let _ = self.dev.ctx.bind_to_thread();
            let _ = unsafe { cu::free_async(self.ptr, self.dev.stream.cu_stream()) };
        }
    }
}

/// Grid size for `n` items at `per_block` items a block, capped so huge tensors loop (grid-stride).
pub fn blocks_for(n: usize, per_block: u32) -> u32 {
    (n.div_ceil(per_block as usize)).clamp(1, 65535 * 8) as u32
}
