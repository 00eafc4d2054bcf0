//! GPU bench cases for kernels/lora.cu: the fused LoRA forward against cuBLAS x W alone and
//! against the unfused 3-call cuBLAS composition, the decode shape (N = 16, bandwidth over
//! W + A + B), and the backward against one cuBLAS dgrad GEMM (dX = dY W^T). On an sm_90 device
//! every LoRA row is timed on the mma.sync GEMM ("bf16") and on each wgmma GEMM ("bf16 wgmma",
//! "bf16 wgmma-n256", "bf16 wgmma-n256-l3").
use super::baseline::{cublas_gemm_ms, Cublas};
use super::{Case, Ctx, Row};
use crate::backend::cuda::matmul::GemmPath;
use crate::backend::cuda::{elementwise as ew, lora, CudaStorage};
use crate::backend::{BinaryOp, LoraDims};
use crate::tensor::{DType, Shape};
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let blas = Cublas::new(&ctx.dev).ok();
    let dt = DType::BF16;
    let es = dt.size_in_bytes();
    let shapes: &[(usize, usize, usize, usize)] = ctx.size(&[(4096, 4096, 4096, 16), (16, 4096, 4096, 16)], &[(256, 128, 128, 16), (16, 128, 128, 16)]);
    for &(n, k, m, r) in shapes {
        let d = LoraDims { n, k, m, r, scale: 2.0 };
        let sets = ctx.sets_for((n * k + k * m) * es);
        let x = ctx.rand_sets(n * k, dt, sets, 11)?;
        let w = ctx.rand_sets(k * m, dt, sets, 12)?;
        let a = ctx.rand_sets(k * r, dt, sets, 13)?;
        let b = ctx.rand_sets(r * m, dt, sets, 14)?;
        let shape = format!("N={n} K={k} M={m} R={r}");
        let flops = 2.0 * (n * k * m + n * k * r + n * r * m) as f64;
        let bytes = ((n * k + k * m + k * r + r * m + n * m) * es) as f64;
        let baseline = GemmPath::current();
        let mut paths = vec![GemmPath::Mma];
        if ctx.sm90() && n >= 128 {
            paths.extend(GemmPath::wgmma_paths()); // (decode shapes stay on mma.sync: GemmPath::for_rows)
        }
        // cuBLAS baselines, once per shape: x W alone, the unfused 3 calls, one dgrad GEMM.
        let mut xw = None;
        let mut unfused = None;
        let mut dgrad = None;
        if let Some(blas) = &blas {
            xw = Some(cublas_gemm_ms(ctx, blas, n, k, m, dt, false, false)?);
            if n > 64 {
                // Unfused: t = x A, u = t B, y = x W, y + u (our add).
                let (t, u, y) = (CudaStorage::alloc(&ctx.dev, dt, n * r)?, CudaStorage::alloc(&ctx.dev, dt, n * m)?, CudaStorage::alloc(&ctx.dev, dt, n * m)?);
                let s = Shape(vec![n * m]);
                unfused = Some(ctx.time_ms(|i| {
                    let j = i % sets;
                    blas.gemm(&x[j], &a[j], &t, n, k, r, false, false)?;
                    blas.gemm(&t, &b[j], &u, n, r, m, false, false)?;
                    blas.gemm(&x[j], &w[j], &y, n, k, m, false, false)?;
                    ew::binary(BinaryOp::Add, &y, &s, &u, &s, &s).map(drop)
                })?);
                dgrad = Some(cublas_gemm_ms(ctx, blas, n, m, k, dt, false, true)?);
            }
        }
        let dy = ctx.rand_sets(n * m, dt, sets, 15)?;
        for path in paths {
            path.set();
            let name = format!("bf16 {}", path.name());
            let v = if path == GemmPath::Mma { "bf16" } else { name.as_str() };
            let ms = ctx.time_ms(|i| lora::lora(&x[i % sets], &w[i % sets], &a[i % sets], &b[i % sets], d).map(drop))?;
            let case = || Case::new("lora_fwd", v, shape.clone(), ms).flops(flops).bytes(bytes);
            match xw {
                Some(t) => rows.push(ctx.finish(case().vs("cublas_xW", t))),
                None => rows.push(ctx.finish(case())),
            }
            if let Some(t) = unfused {
                rows.push(ctx.finish(case().vs("cublas_3call", t)));
            }
            if n > 64 {
                // Backward, W frozen: dX, dA, dB (vs one cuBLAS dgrad GEMM dX = dY W^T).
                let bwd = ctx.time_ms(|i| {
                    let j = i % sets;
                    lora::lora_backward(&x[j], &w[j], &a[j], &b[j], &dy[j], d, true, false).map(drop)
                })?;
                let c = Case::new("lora_bwd", &format!("{v} dx+da+db"), shape.clone(), bwd).flops(2.0 * flops);
                rows.push(ctx.finish(match dgrad {
                    Some(t) => c.vs("cublas_dgrad", t),
                    None => c,
                }));
            }
        }
        baseline.set();
    }
    Ok(rows)
}
