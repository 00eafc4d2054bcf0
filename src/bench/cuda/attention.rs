//! GPU bench cases for kernels/attention.cu: causal flash-style attention, forward and backward,
//! f32 (and the bf16 forward on tensor cores and on CUDA cores), at B = 4, H = 32, T = 2048, D = 128. FLOPs count the causal half (fwd 2 matmuls, bwd 5,
//! the usual convention; the backward's recomputed forward is not counted).
//! Baseline: the cuBLAS f32 GEMMs an unfused composition runs for every head (fwd: S = Q K^T,
//! O = P V; bwd: dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q), full T x T, issued B * H
//! times on one head's buffers, without the softmax passes: a lower bound on the unfused time.
use super::baseline::Cublas;
use super::{Case, Ctx, Row};
use crate::backend::cuda::elementwise::cast;
use crate::backend::cuda::{attention, CudaStorage};
use crate::backend::AttnDims;
use crate::tensor::DType;
use crate::Result;

/// Milliseconds of `heads` x the unfused per-head GEMMs: 2 for the forward, 4 for the backward.
fn unfused_ms(ctx: &Ctx, blas: &Cublas, t: usize, d: usize, heads: usize, backward: bool) -> Result<f64> {
    let x = ctx.rand_sets(t * d, DType::F32, 2, 31)?; // (T, D) operands: Q, K, V, dO alike
    let p = ctx.rand_sets(t * t, DType::F32, 1, 32)?.remove(0); // (T, T): S, P or dS
    let (s, o) = (CudaStorage::alloc(&ctx.dev, DType::F32, t * t)?, CudaStorage::alloc(&ctx.dev, DType::F32, t * d)?);
    ctx.time_ms(|_| {
        for _ in 0..heads {
            if backward {
                blas.gemm(&p, &x[0], &o, t, t, d, true, false)?; // dV = P^T dO
                blas.gemm(&x[0], &x[1], &s, t, d, t, false, true)?; // dP = dO V^T
                blas.gemm(&p, &x[1], &o, t, t, d, false, false)?; // dQ = dS K
                blas.gemm(&p, &x[0], &o, t, t, d, true, false)?; // dK = dS^T Q
            } else {
                blas.gemm(&x[0], &x[1], &s, t, d, t, false, true)?; // S = Q K^T
                blas.gemm(&p, &x[1], &o, t, t, d, false, false)?; // O = P V
            }
        }
        Ok(())
    })
}

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let (b, h, t, d) = ctx.size((4, 32, 2048, 128), (1, 2, 130, 64));
    let dm = AttnDims { b, hq: h, hkv: h, tq: t, tk: t, d, scale: 1.0 / (d as f64).sqrt() };
    let n = b * h * t * d;
    let mut x = ctx.rand_sets(n, DType::F32, 4, 21)?.into_iter();
    let (q, k, v, g) = (x.next().unwrap(), x.next().unwrap(), x.next().unwrap(), x.next().unwrap());
    let shape = format!("B{b} H{h} T{t} D{d}");
    let fwd_flops = 4.0 * (b * h) as f64 * (t * t) as f64 * d as f64 / 2.0;
    let blas = Cublas::new(&ctx.dev).ok();
    let mut rows = vec![];

    let ms = ctx.time_ms(|_| attention::attention(&q, &k, &v, dm).map(drop))?;
    let mut case = Case::new("attention_fwd", "f32", shape.clone(), ms).flops(fwd_flops);
    if let Some(blas) = &blas {
        case = case.vs("cublas_unfused_gemms", unfused_ms(ctx, blas, t, d, b * h, false)?);
    }
    rows.push(ctx.finish(case));

    // bf16: the tensor-core forward (attention_tc.cu) and, beside it, the CUDA-core one.
    let (qb, kb, vb) = (cast(&q, DType::BF16)?, cast(&k, DType::BF16)?, cast(&v, DType::BF16)?);
    let ms = ctx.time_ms(|_| attention::attention_on(&qb, &kb, &vb, dm, true).map(drop))?;
    let mut case = Case::new("attention_fwd", "bf16 tensor cores", shape.clone(), ms).flops(fwd_flops);
    if let Some(blas) = &blas {
        case = case.vs("cublas_unfused_gemms", unfused_ms(ctx, blas, t, d, b * h, false)?);
    }
    rows.push(ctx.finish(case));
    let cores = ctx.time_ms(|_| attention::attention_on(&qb, &kb, &vb, dm, false).map(drop))?;
    rows.push(ctx.finish(Case::new("attention_fwd", "bf16 cuda cores", shape.clone(), cores).flops(fwd_flops).vs("bf16 tensor cores", ms)));
    // bf16 backward (tensor cores unless KILN_ATTN=cores; the forward it reruns for lse included).
    let gb = cast(&g, DType::BF16)?;
    let ms = ctx.time_ms(|_| attention::attention_backward(&qb, &kb, &vb, &gb, dm).map(drop))?;
    let variant = if attention::tensor_cores() { "bf16 tensor cores" } else { "bf16 cuda cores" };
    let mut case = Case::new("attention_bwd", variant, shape.clone(), ms).flops(2.5 * fwd_flops);
    if let Some(blas) = &blas {
        case = case.vs("cublas_unfused_gemms", unfused_ms(ctx, blas, t, d, b * h, true)?);
    }
    rows.push(ctx.finish(case));
    drop((qb, kb, vb, gb));

    let ms = ctx.time_ms(|_| attention::attention_backward(&q, &k, &v, &g, dm).map(drop))?;
    let mut case = Case::new("attention_bwd", "f32", shape, ms).flops(2.5 * fwd_flops);
    if let Some(blas) = &blas {
        case = case.vs("cublas_unfused_gemms", unfused_ms(ctx, blas, t, d, b * h, true)?);
    }
    rows.push(ctx.finish(case));
    Ok(rows)
}
