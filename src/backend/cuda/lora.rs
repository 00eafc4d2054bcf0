//! Launch wrappers for kernels/lora.cu. Twin: backend/cpu/lora.rs.
//!
//! Every product is one launch of `lora_gemm_<A>_<B>_<C>` (a tiled GEMM over a concatenated
//! reduction dimension, operands addressed by strides so transposes are free; bf16 x bf16
//! products use its tensor-core twin `lora_mma_bf16_<C>`):
//!   forward:  t = s x A (f32), then y = [x | t] [W ; B]  (y written once)
//!   backward: g = s dY B^T (f32); dX = [dY | g] [W^T ; A^T]; t = x A (f32, recomputed);
//!             dA = X^T g; dB = s t^T dY; dW = X^T dY
//! The reductions over N (dA, dB, dW) and any thin GEMM with a long reduction are split over the
//! reduction dimension into f32 partials when the output has few tiles, then summed in a fixed
//! order by `lora_reduce_*` (deterministic). The split count depends only on the shape.
//!
//! bf16 fast path (r > 0): the thin products (t, g, dA, dB) stay on `lora_mma_bf16_*` but with
//! t and g rounded to bf16, and the two big ones run on kernels/matmul.cu's tensor-core GEMM:
//! y = [x | t] [W ; B] and dX = [dY | g] [W^T ; A^T] on `hgemm_cat_*` (the reduction K + R in
//! 64-wide k-tiles, ceil(K/64) + ceil(R/64) of them), dW = X^T dY on `hgemm_tn`.

use super::{blocks_for, Arg, CudaStorage, Dev};
use crate::backend::LoraDims;
use crate::tensor::{DType, Shape};
use crate::{Error, Result};
use std::sync::Arc;

const FAMILY: &str = "lora";
const THREADS: u32 = 256;
const TILE: usize = 64;
/// Split a reduction when the output has fewer tiles than this, at least: about two waves of an
/// H100 (the emulated device's 4 SMs keep it, so its tests split as before).
const TARGET_BLOCKS: usize = 264;
/// Blocks aimed for per SM when splitting: each block keeps one k-tile in flight, so a skinny
/// product is latency-bound unless many run at once. On the H200 the 16 x 4096 x 4096 decode
/// matmul ran at 0.52 TB/s with 320 blocks (5 splits, ncu 61 us) against cuBLAS's 11.5 us.
const BLOCKS_PER_SM: usize = 8;
/// Each split reduces at least this many k.
const MIN_SPLIT_K: usize = 256;
/// At most this many rows (decode batches), bf16 products run split-K on `lora_mma_*` rather than
/// on kernels/matmul.cu's 128 x 128 tiles (here and in matmul.rs).
pub(super) const SKINNY_ROWS: usize = 32;
/// kernels/matmul.cu's bf16 GEMM: 128 x 128 block tile, 3 stages x 2 operands x 128 x 72 bf16
/// of dynamic shared memory (same numbers as backend/cuda/matmul.rs).
const HG_TILE: usize = 128;
const HG_SMEM: u32 = 3 * 2 * 128 * 72 * 2;

fn sfx(d: DType) -> &'static str {
    if d == DType::BF16 { "bf16" } else { "f32" }
}

/// One operand: (buffer, row stride, column stride).
pub(super) type Op<'a> = (&'a CudaStorage, usize, usize);

/// c (m x n) = alpha * (A1 B1 + A2 B2), c of dtype `out`; pair 2 has A2 in f32 and B2 of A1's dtype.
/// A1 (m x k1), B1 (k1 x n), A2 (m x k2), B2 (k2 x n). Also matmul.rs's skinny bf16 path (few rows).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(dev: &Arc<Dev>, a1: Op, b1: Op, k1: usize, pair2: Option<(Op, Op, usize)>, m: usize, n: usize, alpha: f32, out: DType) -> Result<CudaStorage> {
    let c = CudaStorage::alloc(dev, out, m * n)?;
    if m == 0 || n == 0 {
        return Ok(c);
    }
    let k2 = pair2.map_or(0, |p| p.2);
    let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
    // bf16 x bf16 products run on tensor cores (mma.sync, 128 threads); the rest on CUDA cores.
    let mma = a1.0.dtype == DType::BF16 && b1.0.dtype == DType::BF16;
    let stream = if mma && pair2.is_none() { streams(a1, b1, m, k1, n) } else { None };
    let stream_fn = |layout: &str, c: DType| dev.func(FAMILY, &format!("lora_stream_{layout}_bf16_{}", sfx(c)));
    let mut splits = 1;
    // Pair 1's reduction is split; pair 2 (short: a rank) joins the last split. lora_stream: as
    // many whole splits as fill the blocks resident at once (one wave, no half-empty second one).
    let target = TARGET_BLOCKS.max(BLOCKS_PER_SM * dev.sm_count as usize);
    if let Some((layout, ..)) = stream {
        let resident = TARGET_BLOCKS.max(dev.resident_blocks(&stream_fn(layout, DType::F32)?, 128, 0)? as usize);
        if tiles < resident && k1 >= 2 * MIN_SPLIT_K {
            splits = (resident / tiles).min(k1 / MIN_SPLIT_K).clamp(1, 64);
        }
    } else if tiles < target && k1 >= 2 * MIN_SPLIT_K {
        splits = target.div_ceil(tiles).min(k1 / MIN_SPLIT_K).clamp(1, 64);
    }
    // Each split's k range is a multiple of the k tile (16 on CUDA cores, 32 on tensor cores).
    let kchunk = if splits == 1 { k1.max(1) } else { k1.div_ceil(splits).div_ceil(32) * 32 };
    let splits = if splits == 1 { 1 } else { k1.div_ceil(kchunk) };
    let dest = if splits == 1 { c.clone() } else { CudaStorage::alloc(dev, DType::F32, splits * m * n)? };
    let (a2, b2) = match pair2 {
        Some((a2, b2, _)) => ((a2.0.arg(), a2.1, a2.2), (b2.0.arg(), b2.1, b2.2)),
        None => ((Arg::U64(0), 0, 0), (Arg::U64(0), 0, 0)),
    };
    let grid = (n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, splits as u32);
    let u = |x: usize| Arg::U64(x as u64);
    let scale = Arg::F32(if splits == 1 { alpha } else { 1.0 });
    if let Some((layout, a1s, b1s)) = stream {
        let f = stream_fn(layout, dest.dtype)?;   // dest: f32 partials when split
        let args = [a1.0.arg(), u(a1s), b1.0.arg(), u(b1s), Arg::I32(k1 as i32), dest.arg(), Arg::I32(m as i32), Arg::I32(n as i32), scale, Arg::I32(kchunk as i32)];
        // SAFETY: as below, with each operand's contiguous dimension, its other stride and k1
        // multiples of 8 (`streams`): every 16-byte piece is wholly in or out, and aligned.
        dev.launch(&f, grid, (128, 1, 1), 0, &args)?;
    } else {
        let (name, threads) = if mma {
            (format!("lora_mma_bf16_{}", sfx(dest.dtype)), 128)
        } else {
            (format!("lora_gemm_{}_{}_{}", sfx(a1.0.dtype), sfx(b1.0.dtype), sfx(dest.dtype)), THREADS)
        };
        let f = dev.func(FAMILY, &name)?;
        let args = [
            a1.0.arg(), u(a1.1), u(a1.2), b1.0.arg(), u(b1.1), u(b1.2), Arg::I32(k1 as i32),
            a2.0, u(a2.1), u(a2.2), b2.0, u(b2.1), u(b2.2), Arg::I32(k2 as i32),
            dest.arg(), Arg::I32(m as i32), Arg::I32(n as i32), scale, Arg::I32(kchunk as i32),
        ];
        dev.launch(&f, grid, (threads, 1, 1), 0, &args)?;
    }
    if splits > 1 {
        let f = dev.func(FAMILY, &format!("lora_reduce_{}", sfx(out)))?;
        let len = m * n;
        let args = [dest.arg(), c.arg(), Arg::U64(len as u64), Arg::I32(splits as i32), Arg::F32(alpha)];
        dev.launch(&f, (blocks_for(len, THREADS).min(4096), 1, 1), (THREADS, 1, 1), 0, &args)?;
    }
    Ok(c)
}

/// The `lora_stream_*` kernel (kernels/lora_stream.cuh) for a single-pair bf16 product, as
/// (layout, A1's stride that is not 1, B1's): A1 (m x k) k-contiguous ("n") or m-contiguous
/// ("t"), B1 (k x n) n-contiguous ("n") or k-contiguous ("t"), with the contiguous dimension, the
/// other stride and k multiples of 8 (x W and x A: nn; dY B^T: nt; X^T g: tn; t^T dY: tn). None
/// otherwise, or with `KILN_LORA=mma` (lora_mma for every bf16 product, as on the H200 run of
/// 2026-11-27).
fn streams(a1: Op, b1: Op, m: usize, k: usize, n: usize) -> Option<(&'static str, usize, usize)> {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ON.get_or_init(|| std::env::var("KILN_LORA").map_or(true, |v| v != "mma")) || k % 8 != 0 {
        return None;
    }
    // (transposed?, the other stride) when one of the operand's strides is 1 and the rest align
    let side = |(_, rs, cs): Op, rows: usize| match (rs, cs) {
        (_, 1) if rs % 8 == 0 => Some((false, rs)),
        (1, _) if cs % 8 == 0 && rows % 8 == 0 => Some((true, cs)),
        _ => None,
    };
    let (at, a1s) = side(a1, m)?;
    // B1 (k x n) seen as B1^T (n x k): "transposed" there means n-contiguous here
    let (bn, b1s) = side((b1.0, b1.2, b1.1), n)?;
    let layout = match (at, !bn) {
        (false, false) => "nn",
        (true, false) => "tn",
        (false, true) => "nt",
        (true, true) => "tt",
    };
    Some((layout, a1s, b1s))
}

/// bf16 only: C (rows x cols, bf16) = [A1 | A2] [B1 ; B2] on the tensor-core GEMM of
/// kernels/matmul.cu (`hgemm_cat_nn`, or `hgemm_cat_nt` when tb). A1 (rows, k1) and A2 (rows, k2)
/// are row-major; B1 (k1, cols), B2 (k2, cols), or, tb, B1 (cols, k1), B2 (cols, k2).
/// The kernel loads 16 bytes at a time only: `cat_ok` must hold (else Ok(None), as when the grid
/// cannot hold the shape; the caller then takes the generic path).
#[allow(clippy::too_many_arguments)]
fn hgemm_cat(dev: &Arc<Dev>, a1: &CudaStorage, b1: &CudaStorage, k1: usize, a2: &CudaStorage, b2: &CudaStorage, k2: usize, rows: usize, cols: usize, tb: bool) -> Result<Option<CudaStorage>> {
    if !cat_ok(rows, k1, k2, cols, tb) {
        return Ok(None);
    }
    if super::matmul::GemmPath::for_rows(rows).takes(dev, &[k1, k2, if tb { k1 } else { cols }]) {
        return super::matmul::wgmma_cat(a1, b1, k1, a2, b2, k2, rows, cols, tb).map(Some);
    }
    let c = CudaStorage::alloc(dev, DType::BF16, rows * cols)?;
    if rows == 0 || cols == 0 {
        return Ok(Some(c));
    }
    let f = dev.func("matmul", if tb { "hgemm_cat_nt" } else { "hgemm_cat_nn" })?;
    // 16-byte cp.async needs each operand's contiguous dimension to be a multiple of 8.
    let v = |x: usize| Arg::I32((x % 8 == 0) as i32);
    let (vb1, vb2) = if tb { (v(k1), v(k2)) } else { (v(cols), v(cols)) };
    let i = |x: usize| Arg::I32(x as i32);
    let args = [a1.arg(), b1.arg(), c.arg(), i(rows), i(k1), i(cols), v(k1), vb1, a2.arg(), b2.arg(), i(k2), v(k2), vb2];
    let grid = (cols.div_ceil(HG_TILE) as u32, rows.div_ceil(HG_TILE) as u32, 1);
    // SAFETY: the argument list matches the kernel's declaration; a1, a2 hold rows*k1, rows*k2,
    // b1, b2 hold k1*cols, k2*cols bf16 (checked by the callers), c holds rows*cols.
    dev.launch(&f, grid, (THREADS, 1, 1), HG_SMEM, &args)?;
    Ok(Some(c))
}

/// Whether `hgemm_cat` takes this shape: every operand's contiguous dimension a multiple of 8
/// (16-byte cp.async from 16-byte-aligned rows) and the row blocks within the grid's y limit.
fn cat_ok(rows: usize, k1: usize, k2: usize, cols: usize, tb: bool) -> bool {
    rows.div_ceil(HG_TILE) <= 65535 && k1 % 8 == 0 && k2 % 8 == 0 && (tb || cols % 8 == 0)
}

fn check(op: &'static str, d: LoraDims, bufs: &[(&CudaStorage, usize, &str)]) -> Result<DType> {
    let t = bufs[0].0.float(op)?.dtype;
    for &(s, len, what) in bufs {
        s.expect(op, t)?;
        if s.len != len {
            return Err(Error::bad_shape(op, &Shape(vec![s.len]), format!("{what}: expected {len} elements for {d:?}")));
        }
    }
    if [d.n, d.k, d.m, d.r].iter().any(|&x| x > i32::MAX as usize / 2) {
        return Err(Error::bad_shape(op, &Shape(vec![d.n, d.k, d.m, d.r]), "dimension too large for the CUDA kernel"));
    }
    Ok(t)
}

#[allow(clippy::too_many_arguments)]
pub fn lora(x: &CudaStorage, w: &CudaStorage, a: &CudaStorage, b: &CudaStorage, dims: LoraDims) -> Result<CudaStorage> {
    let LoraDims { n, k, m, r, scale } = dims;
    let dt = check("lora", dims, &[(x, n * k, "x (N, K)"), (w, k * m, "w (K, M)"), (a, k * r, "a (K, R)"), (b, r * m, "b (R, M)")])?;
    let dev = x.dev();
    // Decode shapes (a few rows) take the split-K path below: one 128-row GEMM tile per column
    // block would leave most of the GPU idle while W streams through.
    if dt == DType::BF16 && r > 0 && n > SKINNY_ROWS && cat_ok(n, k, r, m, false) {
        // t = s x A in bf16, then y = [x | t] [W ; B] on the tensor-core GEMM (y written once).
        let t = gemm(dev, (x, k, 1), (a, r, 1), k, None, n, r, scale as f32, DType::BF16)?;
        if let Some(y) = hgemm_cat(dev, x, w, k, &t, b, r, n, m, false)? {
            return Ok(y);
        }
    }
    // t = s x A: (N, K) x (K, R) -> (N, R) f32
    let t = gemm(dev, (x, k, 1), (a, r, 1), k, None, n, r, scale as f32, DType::F32)?;
    // y = x W + t B: (N, K) x (K, M) + (N, R) x (R, M)
    let pair2 = (r > 0).then_some(((&t, r, 1), (b, m, 1), r));
    gemm(dev, (x, k, 1), (w, m, 1), k, pair2, n, m, 1.0, dt)
}

#[allow(clippy::too_many_arguments)]
pub fn lora_backward(x: &CudaStorage, w: &CudaStorage, a: &CudaStorage, b: &CudaStorage, dy: &CudaStorage, dims: LoraDims, need_dx: bool, need_dw: bool) -> Result<Vec<Option<CudaStorage>>> {
    let LoraDims { n, k, m, r, scale } = dims;
    let dt = check(
        "lora_backward",
        dims,
        &[(x, n * k, "x (N, K)"), (w, k * m, "w (K, M)"), (a, k * r, "a (K, R)"), (b, r * m, "b (R, M)"), (dy, n * m, "dy (N, M)")],
    )?;
    let dev = x.dev();
    let s = scale as f32;
    if dt == DType::BF16 && r > 0 && k.div_ceil(HG_TILE) <= 65535 && (!need_dx || cat_ok(n, m, r, k, true)) {
        return backward_bf16(x, w, a, b, dy, dims, need_dx, need_dw);
    }
    // g = s dY B^T: (N, M) x (M, R) -> (N, R) f32; B^T (m, r) = b[r * M + m]
    let g = gemm(dev, (dy, m, 1), (b, 1, m), m, None, n, r, s, DType::F32)?;
    // dA = X^T g: (K, N) x (N, R) -> (K, R); X^T (kk, i) = x[i * K + kk]
    let da = gemm(dev, (x, 1, k), (&g, r, 1), n, None, k, r, 1.0, dt)?;
    // t = X A: (N, R) f32, then dB = s t^T dY: (R, N) x (N, M) -> (R, M)
    let t = gemm(dev, (x, k, 1), (a, r, 1), k, None, n, r, 1.0, DType::F32)?;
    let db = gemm(dev, (&t, 1, r), (dy, m, 1), n, None, r, m, s, dt)?;
    // dX = dY W^T + g A^T: (N, M) x (M, K) + (N, R) x (R, K); W^T (j, kk) = w[kk * M + j], A^T (q, kk) = a[kk * R + q]
    let dx = if need_dx {
        let pair2 = (r > 0).then_some(((&g, r, 1), (a, 1, r), r));
        Some(gemm(dev, (dy, m, 1), (w, 1, m), m, pair2, n, k, 1.0, dt)?)
    } else {
        None
    };
    // dW = X^T dY: (K, N) x (N, M) -> (K, M)
    let dw = if need_dw { Some(gemm(dev, (x, 1, k), (dy, m, 1), n, None, k, m, 1.0, dt)?) } else { None };
    Ok(vec![dx, dw, Some(da), Some(db)])
}

/// The bf16 backward on tensor cores: g and t in bf16 (every product is then bf16 x bf16), dX on
/// the concatenated-K GEMM of kernels/matmul.cu, dW on its transposed-A GEMM (`hgemm_tn`).
/// Requires r > 0, ceil(K / 128) <= 65535 and, if need_dx, cat_ok for dX (checked by the caller).
#[allow(clippy::too_many_arguments)]
fn backward_bf16(x: &CudaStorage, w: &CudaStorage, a: &CudaStorage, b: &CudaStorage, dy: &CudaStorage, dims: LoraDims, need_dx: bool, need_dw: bool) -> Result<Vec<Option<CudaStorage>>> {
    let LoraDims { n, k, m, r, scale } = dims;
    let dev = x.dev();
    let s = scale as f32;
    let bf = DType::BF16;
    // g = s dY B^T: (N, M) x (M, R) -> (N, R) bf16
    let g = gemm(dev, (dy, m, 1), (b, 1, m), m, None, n, r, s, bf)?;
    // dA = X^T g: (K, N) x (N, R) -> (K, R)
    let da = gemm(dev, (x, 1, k), (&g, r, 1), n, None, k, r, 1.0, bf)?;
    // t = X A (N, R) bf16, dB = s t^T dY: (R, N) x (N, M) -> (R, M)
    let t = gemm(dev, (x, k, 1), (a, r, 1), k, None, n, r, 1.0, bf)?;
    let db = gemm(dev, (&t, 1, r), (dy, m, 1), n, None, r, m, s, bf)?;
    // dX = [dY | g] [W^T ; A^T]: W (K, M) and A (K, R) are the (cols, k) layouts of W^T and A^T.
    let dx = if need_dx {
        let dx = hgemm_cat(dev, dy, w, m, &g, a, r, n, k, true)?;
        Some(dx.ok_or_else(|| Error::bad_shape("lora_backward", &Shape(vec![n, k]), "shape not taken by hgemm_cat"))?)
    } else {
        None
    };
    // dW = X^T dY: (K, N) x (N, M) -> (K, M); x is the (N, K) = transposed layout of X^T.
    let dw = if need_dw { Some(super::matmul::matmul(x, dy, 1, 1, k, n, m, true, false)?) } else { None };
    Ok(vec![dx, dw, Some(da), Some(db)])
}
