//! The CUDA backend's entry: finding devices without panicking, and device buffers.
//! cudarc loads libcuda at run time (`dynamic-loading`), and panics if a library is missing, so
//! every GPU path goes through `cuda_available()`, which asks the non-panicking
//! `is_culib_present()` probe first. runtime.rs holds the per-device state (stream, NVRTC module
//! cache, pooled buffers, launches); kernels.rs the embedded sources; kernel_cache.rs their PTX on
//! disk between processes; one file per kernel family holds its launch wrappers, with the same
//! name as its CPU twin in backend/cpu.

#[cfg(feature = "emu")]
pub mod emu;
#[cfg(feature = "cuda")]
pub mod kernel_cache;
#[cfg(feature = "cuda")]
pub mod kernels;
#[cfg(feature = "cuda")]
pub mod runtime;
#[cfg(feature = "cuda")]
pub mod elementwise;
#[cfg(feature = "cuda")]
pub mod reduce;
#[cfg(feature = "cuda")]
pub mod layout;
#[cfg(feature = "cuda")]
pub mod softmax_xent;
#[cfg(feature = "cuda")]
pub mod norm;
#[cfg(feature = "cuda")]
pub mod norm_warp;
#[cfg(feature = "cuda")]
pub mod rope;
#[cfg(feature = "cuda")]
pub mod embedding;
#[cfg(feature = "cuda")]
pub mod adamw;
#[cfg(feature = "cuda")]
pub mod matmul;
#[cfg(feature = "cuda")]
pub mod tma;
#[cfg(feature = "cuda")]
pub mod attention;
#[cfg(feature = "cuda")]
pub mod lora;
#[cfg(feature = "cuda")]
pub mod lora_multi_adapter;
#[cfg(feature = "cuda")]
pub mod linear_attention;
#[cfg(feature = "cuda")]
pub mod linear_attention_tc;
#[cfg(feature = "cuda")]
pub mod linear_attention_varlen;
#[cfg(feature = "cuda")]
pub mod sampling;

/// What `kiln info` prints about one GPU.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub total_mem_bytes: usize,
}

#[cfg(feature = "cuda")]
mod imp {
    use super::DeviceInfo;
    use crate::backend::cpu::CpuStorage;
    use crate::tensor::DType;
    use crate::{Error, Result};
    use cudarc::driver::CudaContext;
    use std::sync::Arc;
    pub use super::runtime::{blocks_for, dev, Arg, Dev, DevBuf, Func};

    /// Is the CUDA driver library loadable and does it see at least one device?
    pub fn cuda_available() -> bool {
        device_count().map(|n| n > 0).unwrap_or(false)
    }

    /// Number of CUDA devices, or why there are none.
    pub fn device_count() -> Result<usize> {
        #[cfg(feature = "emu")]
        if super::emu::requested() {
            return Ok(1); // the emulated device (KILN_CUDA_EMU=1)
        }
        // SAFETY: is_culib_present only tries to dlopen libcuda; it has no other side effects.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(Error::NoCuda("the CUDA driver library (libcuda.so) was not found".into()));
        }
        let n = CudaContext::device_count().map_err(|e| Error::NoCuda(format!("cuInit failed: {e:?}")))?;
        Ok(n.max(0) as usize)
    }

    pub fn devices() -> Result<Vec<DeviceInfo>> {
        #[cfg(feature = "emu")]
        if super::emu::requested() {
            let name = "kiln emulator (kernels run on the CPU)".to_string();
            return Ok(vec![DeviceInfo { ordinal: 0, name, compute_capability: (8, 0), total_mem_bytes: 0 }]);
        }
        (0..device_count()?)
            .map(|i| {
                let ctx = context(i)?;
                let err = |e| Error::Cuda(format!("device {i}: {e:?}"));
                Ok(DeviceInfo {
                    ordinal: i,
                    name: ctx.name().map_err(err)?,
                    compute_capability: ctx.compute_capability().map_err(err)?,
                    total_mem_bytes: ctx.total_mem().map_err(err)?,
                })
            })
            .collect()
    }

    pub fn context(ordinal: usize) -> Result<Arc<CudaContext>> {
        let n = device_count()?;
        if ordinal >= n {
            return Err(Error::NoCuda(format!("cuda:{ordinal} asked for, {n} device(s) present")));
        }
        CudaContext::new(ordinal).map_err(|e| Error::Cuda(format!("creating a context on cuda:{ordinal}: {e:?}")))
    }

    /// A device buffer: `len` elements of `dtype`, shared by clones (buffers are never written
    /// after the op that made them returns).
    #[derive(Clone, Debug)]
    pub struct CudaStorage {
        pub buf: Arc<DevBuf>,
        pub dtype: DType,
        pub len: usize,
    }

    impl CudaStorage {
        /// A new, uninitialised buffer of `len` elements on `dev`.
        pub fn alloc(dev: &Arc<Dev>, dtype: DType, len: usize) -> Result<Self> {
            Ok(CudaStorage { buf: Arc::new(dev.alloc(len * dtype.size_in_bytes())?), dtype, len })
        }
        pub fn zeros(dev: &Arc<Dev>, dtype: DType, len: usize) -> Result<Self> {
            Ok(CudaStorage { buf: Arc::new(dev.alloc_zeros(len * dtype.size_in_bytes())?), dtype, len })
        }
        pub fn ordinal(&self) -> usize {
            self.buf.dev.ordinal
        }
        pub fn dev(&self) -> &Arc<Dev> {
            &self.buf.dev
        }
        pub fn dtype(&self) -> DType {
            self.dtype
        }
        pub fn arg(&self) -> Arg {
            self.buf.arg()
        }
        /// Refuse anything but the float storage types (F32, BF16) for `op`.
        pub fn float(&self, op: &'static str) -> Result<&Self> {
            match self.dtype {
                DType::F32 | DType::BF16 => Ok(self),
                d => Err(Error::UnsupportedDType { op, dtype: d, detail: "CUDA kernels take F32 or BF16" }),
            }
        }
        pub fn expect(&self, op: &'static str, dtype: DType) -> Result<&Self> {
            if self.dtype == dtype {
                Ok(self)
            } else {
                Err(Error::DTypeMismatch { op, expected: dtype, got: self.dtype })
            }
        }
        pub fn from_cpu(s: &CpuStorage, ordinal: usize) -> Result<Self> {
            let dev = dev(ordinal)?;
            let buf = match s {
                CpuStorage::F32(v) => dev.upload(v)?,
                CpuStorage::BF16(v) => dev.upload(v)?,
                CpuStorage::U32(v) => dev.upload(v)?,
                CpuStorage::F64(_) => {
                    return Err(Error::UnsupportedDType { op: "to_device", dtype: DType::F64, detail: "F64 is CPU-only (gradchecks)" })
                }
            };
            Ok(CudaStorage { buf: Arc::new(buf), dtype: s.dtype(), len: s.len() })
        }
        pub fn to_cpu(&self) -> Result<CpuStorage> {
            Ok(match self.dtype {
                DType::F32 => CpuStorage::F32(self.buf.download()?),
                DType::BF16 => CpuStorage::BF16(self.buf.download()?),
                DType::U32 => CpuStorage::U32(self.buf.download()?),
                DType::F64 => unreachable!("F64 never reaches a CUDA buffer"),
            })
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod imp {
    use super::DeviceInfo;
    use crate::{Error, Result};
    pub fn cuda_available() -> bool {
        false
    }
    pub fn device_count() -> Result<usize> {
        Err(Error::NoCuda("kiln was built without the `cuda` feature".into()))
    }
    pub fn devices() -> Result<Vec<DeviceInfo>> {
        device_count().map(|_| vec![])
    }
}

pub use imp::*;
