//! The baselines measured in the same process: the card's copy bandwidth, cuBLAS GEMM (the only
//! place kiln calls cuBLAS: benches and parity tests, never the engine's own ops).

use super::{Case, Ctx, Row};
use crate::backend::cuda::{CudaStorage, Dev};
use crate::tensor::DType;
use crate::{Error, Result};
use cudarc::cublas::{result as cb, sys as cbs};
use std::ffi::c_void;
use std::sync::Arc;

/// A cuBLAS handle bound to the device's stream.
pub struct Cublas {
    handle: cbs::cublasHandle_t,
    dev: Arc<Dev>,
}

impl Cublas {
    pub fn new(dev: &Arc<Dev>) -> Result<Cublas> {
        if dev.is_emu() {
            return Err(Error::NoCuda("the emulated device has no cuBLAS".into()));
        }
        // SAFETY: only tries to dlopen libcublas.
        if !unsafe { cbs::is_culib_present() } {
            return Err(Error::NoCuda("cuBLAS (libcublas.so) was not found; it is only needed for baselines".into()));
        }
        dev.ctx.bind_to_thread().map_err(|e| Error::Cuda(format!("{e:?}")))?;
        let handle = cb::create_handle().map_err(|e| Error::Cuda(format!("cublasCreate: {e:?}")))?;
        // SAFETY: a live handle and the device's stream.
        unsafe { cb::set_stream(handle, dev.stream.cu_stream() as _) }.map_err(|e| Error::Cuda(format!("cublasSetStream: {e:?}")))?;
        Ok(Cublas { handle, dev: dev.clone() })
    }

    /// Row-major C (M, N) = op(A) op(B), A (M, K) or (K, M) when `ta`, B (K, N) or (N, K) when
    /// `tb`; F32 or BF16 operands and output, f32 accumulation (F32 operands: full-precision
    /// SGEMM, no TF32). cuBLAS is column-major, so this computes C^T = op(B)^T op(A)^T.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(&self, a: &CudaStorage, b: &CudaStorage, c: &CudaStorage, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Result<()> {
        let (ty, compute) = match a.dtype {
            DType::F32 => (cbs::cudaDataType::CUDA_R_32F, cbs::cublasComputeType_t::CUBLAS_COMPUTE_32F),
            DType::BF16 => (cbs::cudaDataType::CUDA_R_16BF, cbs::cublasComputeType_t::CUBLAS_COMPUTE_32F),
            d => return Err(Error::UnsupportedDType { op: "cublas gemm", dtype: d, detail: "F32 or BF16" }),
        };
        let op = |t: bool| if t { cbs::cublasOperation_t::CUBLAS_OP_T } else { cbs::cublasOperation_t::CUBLAS_OP_N };
        let (alpha, beta) = (1.0f32, 0.0f32);
        let lda_b = if tb { k } else { n }; // B^T seen column-major: leading dim is B's row length
        let lda_a = if ta { m } else { k };
        // SAFETY: pointers are live device buffers of the sizes the dimensions describe.
        unsafe {
            cb::gemm_ex(
                self.handle,
                op(tb),
                op(ta),
                n as i32,
                m as i32,
                k as i32,
                &alpha as *const f32 as *const c_void,
                b.buf.ptr as *const c_void,
                ty,
                lda_b as i32,
                a.buf.ptr as *const c_void,
                ty,
                lda_a as i32,
                &beta as *const f32 as *const c_void,
                c.buf.ptr as *mut c_void,
                ty,
                n as i32,
                compute,
                cbs::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| Error::Cuda(format!("cublasGemmEx: {e:?}")))
    }
}

impl Drop for Cublas {
    fn drop(&mut self) {
        let _ = self.dev.ctx.bind_to_thread();
        // SAFETY: created in `new`, destroyed once.
        let _ = unsafe { cb::destroy_handle(self.handle) };
    }
}

/// Median ms of a cuBLAS GEMM at (M, K, N) with rotated random operands.
#[allow(clippy::too_many_arguments)] // cuBLAS's own shape of call
pub fn cublas_gemm_ms(ctx: &Ctx, blas: &Cublas, m: usize, k: usize, n: usize, dtype: DType, ta: bool, tb: bool) -> Result<f64> {
    let sets = ctx.sets_for((m * k + k * n) * dtype.size_in_bytes());
    let a = ctx.rand_sets(m * k, dtype, sets, 1)?;
    let b = ctx.rand_sets(k * n, dtype, sets, 2)?;
    let c = CudaStorage::alloc(&ctx.dev, dtype, m * n)?;
    ctx.time_ms(|i| blas.gemm(&a[i % sets], &b[i % sets], &c, m, k, n, ta, tb))
}

/// The two ceilings: device-to-device copy (GB/s, bytes read + written) and cuBLAS bf16 GEMM at
/// 8192^3 (TFLOP/s). Sets `ctx.copy_gbps`.
pub fn ceilings(ctx: &mut Ctx) -> Result<Vec<Row>> {
    let bytes = ctx.size(1usize << 30, 1 << 20);
    let (src, dst) = (ctx.dev.alloc_zeros(bytes)?, ctx.dev.alloc(bytes)?);
    src.fill_bytes(0x3c)?;
    let ms = ctx.time_ms(|_| dst.copy_from(0, &src, 0, bytes))?;
    ctx.copy_gbps = 2.0 * bytes as f64 / (ms * 1e-3) / 1e9;
    let mut rows = vec![ctx.finish(Case::new("ceiling_copy", "dtod", ctx.size("1 GiB", "1 MiB").into(), ms).bytes(2.0 * bytes as f64))];
    drop((src, dst));
    match Cublas::new(&ctx.dev) {
        Ok(blas) => {
            let s = 8192;
            let ms = cublas_gemm_ms(ctx, &blas, s, s, s, DType::BF16, false, false)?;
            rows.push(ctx.finish(Case::new("ceiling_gemm", "cublas_bf16", "8192^3".into(), ms).flops(2.0 * (s as f64).powi(3))));
        }
        Err(e) => eprintln!("bench: no cuBLAS ceiling: {e}"),
    }
    Ok(rows)
}
