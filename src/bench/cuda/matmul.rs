//! GPU bench cases for kernels/matmul.cu: the f32 SGEMM and the bf16 mma.sync GEMM against cuBLAS
//! (same operands, same process) at 4096^3, 8192^3 and a model-ish odd shape (an MLP up-projection);
//! on an sm_90 device also the bf16 wgmma GEMMs of kernels/matmul_sm90.cu (variants "bf16 wgmma",
//! "bf16 wgmma-n256", "bf16 wgmma-n256-l3", "bf16 wgmma-tma": GemmPath::wgmma_paths);
//! and one decode shape (16 rows, bandwidth-bound: the split-K skinny path) against cuBLAS.
use super::baseline::Cublas;
use super::{Case, Ctx, Row};
use crate::backend::cuda::matmul::{matmul_on, GemmPath};
use crate::backend::cuda::CudaStorage;
use crate::tensor::DType;
use crate::Result;

/// (M, K, N); the emulated device's smoke run: one tile-multiple shape and one ragged one.
const SHAPES: &[(usize, usize, usize)] = &[(4096, 4096, 4096), (8192, 8192, 8192), (4000, 4096, 11008)];
const TINY: &[(usize, usize, usize)] = &[(256, 128, 256), (136, 72, 200)];

/// The first `len` elements of `s` (the kernels read only what the dimensions describe).
fn prefix(s: &CudaStorage, len: usize) -> CudaStorage {
    CudaStorage { buf: s.buf.clone(), dtype: s.dtype, len }
}

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let blas = Cublas::new(&ctx.dev).ok();
    // Two operand buffers big enough for every shape, shared by A and B (rotated), so the set-up
    // stays within the bench's time budget. GEMMs this size are compute-bound: L2 reuse is moot.
    let shapes = ctx.size(SHAPES, TINY);
    let big = shapes.iter().map(|&(m, k, n)| (m * k).max(k * n)).max().unwrap_or(0);
    let f32_sets = ctx.rand_sets(big, DType::F32, 2, 11)?;
    let mut runs = vec![(DType::F32, GemmPath::Mma), (DType::BF16, GemmPath::Mma)];
    if ctx.sm90() {
        runs.extend(GemmPath::wgmma_paths().into_iter().map(|p| (DType::BF16, p)));
    }
    for (dtype, path) in runs {
        let sets = match dtype {
            DType::F32 => f32_sets.clone(),
            _ => f32_sets.iter().map(|s| crate::backend::cuda::elementwise::cast(s, dtype)).collect::<Result<Vec<_>>>()?,
        };
        let v = format!("{dtype:?}").to_lowercase();
        let variant = if path == GemmPath::Mma { v.clone() } else { format!("{v} {}", path.name()) };
        for &(m, k, n) in shapes {
            let (a, b) = ([prefix(&sets[0], m * k), prefix(&sets[1], m * k)], [prefix(&sets[1], k * n), prefix(&sets[0], k * n)]);
            let shape = format!("{m}x{k}x{n}");
            let ms = ctx.time_ms(|i| matmul_on(path, &a[i % 2], &b[i % 2], 1, 1, m, k, n, false, false).map(drop))?;
            let mut case = Case::new("matmul", &variant, shape, ms).flops(2.0 * (m * k * n) as f64);
            if let Some(blas) = &blas {
                let c = CudaStorage::alloc(&ctx.dev, dtype, m * n)?;
                let base = ctx.time_ms(|i| blas.gemm(&a[i % 2], &b[i % 2], &c, m, k, n, false, false))?;
                case = case.vs(&format!("cublas_{v}"), base);
            }
            rows.push(ctx.finish(case));
        }
        // one transposed case (the weight-gradient layout X^T dY) at 4096^3
        let s = ctx.size(4096, 128);
        let (a, b) = (prefix(&sets[0], s * s), prefix(&sets[1], s * s));
        let ms = ctx.time_ms(|_| matmul_on(path, &a, &b, 1, 1, s, s, s, true, false).map(drop))?;
        let mut case = Case::new("matmul_tn", &variant, format!("{s}^3"), ms).flops(2.0 * (s as f64).powi(3));
        if let Some(blas) = &blas {
            let c = CudaStorage::alloc(&ctx.dev, dtype, s * s)?;
            case = case.vs(&format!("cublas_{v}"), ctx.time_ms(|_| blas.gemm(&a, &b, &c, s, s, s, true, false))?);
        }
        rows.push(ctx.finish(case));
        if dtype == DType::BF16 && path == GemmPath::Mma {
            // A decode step: 16 rows against a 4096 x 4096 weight, bandwidth-bound (split-K path).
            let (m, k, n) = ctx.size((16, 4096, 4096), (16, 128, 128));
            let (a, b) = (prefix(&sets[0], m * k), prefix(&sets[1], k * n));
            let ms = ctx.time_ms(|_| matmul_on(path, &a, &b, 1, 1, m, k, n, false, false).map(drop))?;
            let mut case = Case::new("matmul", "bf16 decode", format!("{m}x{k}x{n}"), ms).bytes((2 * (m * k + k * n + m * n)) as f64);
            if let Some(blas) = &blas {
                let c = CudaStorage::alloc(&ctx.dev, dtype, m * n)?;
                case = case.vs("cublas_bf16", ctx.time_ms(|_| blas.gemm(&a, &b, &c, m, k, n, false, false))?);
            }
            rows.push(ctx.finish(case));
        }
    }
    Ok(rows)
}
