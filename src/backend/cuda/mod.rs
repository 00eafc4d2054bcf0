//! The CUDA backend's entry: finding devices without panicking, and device buffers.
//! cudarc loads libcuda at run time (`dynamic-loading`), and panics if a library is missing, so
//! every GPU path goes through `cuda_available()`, which asks the non-panicking
//! `is_culib_present()` probe first. The kernels themselves (kernels/*.cu, compiled by NVRTC) and
//! their launch wrappers arrive with the [cuda-backend] work; until then every op on CUDA storage
//! returns `Error::NotImplemented` naming the op.

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
    use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
    use std::sync::Arc;

    /// Is the CUDA driver library loadable and does it see at least one device?
    pub fn cuda_available() -> bool {
        device_count().map(|n| n > 0).unwrap_or(false)
    }

    /// Number of CUDA devices, or why there are none.
    pub fn device_count() -> Result<usize> {
        // SAFETY: is_culib_present only tries to dlopen libcuda; it has no other side effects.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(Error::NoCuda("the CUDA driver library (libcuda.so) was not found".into()));
        }
        let n = CudaContext::device_count().map_err(|e| Error::NoCuda(format!("cuInit failed: {e:?}")))?;
        Ok(n.max(0) as usize)
    }

    pub fn devices() -> Result<Vec<DeviceInfo>> {
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

    /// A device buffer and the stream that owns it.
    #[derive(Clone, Debug)]
    pub struct CudaStorage {
        pub slice: CudaSlot,
        pub stream: Arc<CudaStream>,
        pub ordinal: usize,
    }

    #[derive(Clone, Debug)]
    pub enum CudaSlot {
        F32(CudaSlice<f32>),
        BF16(CudaSlice<half::bf16>),
        U32(CudaSlice<u32>),
    }

    impl CudaStorage {
        pub fn ordinal(&self) -> usize {
            self.ordinal
        }
        pub fn dtype(&self) -> DType {
            match self.slice {
                CudaSlot::F32(_) => DType::F32,
                CudaSlot::BF16(_) => DType::BF16,
                CudaSlot::U32(_) => DType::U32,
            }
        }
        pub fn from_cpu(s: &CpuStorage, ordinal: usize) -> Result<Self> {
            let stream = context(ordinal)?.default_stream();
            let err = |e| Error::Cuda(format!("host-to-device copy on cuda:{ordinal}: {e:?}"));
            let slice = match s {
                CpuStorage::F32(v) => CudaSlot::F32(stream.clone_htod(v).map_err(err)?),
                CpuStorage::BF16(v) => CudaSlot::BF16(stream.clone_htod(v).map_err(err)?),
                CpuStorage::U32(v) => CudaSlot::U32(stream.clone_htod(v).map_err(err)?),
                CpuStorage::F64(_) => {
                    return Err(Error::UnsupportedDType { op: "to_device", dtype: DType::F64, detail: "F64 is CPU-only (gradchecks)" })
                }
            };
            Ok(CudaStorage { slice, stream, ordinal })
        }
        pub fn to_cpu(&self) -> Result<CpuStorage> {
            let err = |e| Error::Cuda(format!("device-to-host copy on cuda:{}: {e:?}", self.ordinal));
            Ok(match &self.slice {
                CudaSlot::F32(s) => CpuStorage::F32(self.stream.clone_dtoh(s).map_err(err)?),
                CudaSlot::BF16(s) => CpuStorage::BF16(self.stream.clone_dtoh(s).map_err(err)?),
                CudaSlot::U32(s) => CpuStorage::U32(self.stream.clone_dtoh(s).map_err(err)?),
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
