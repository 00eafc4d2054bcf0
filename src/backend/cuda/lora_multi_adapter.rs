//! Launch wrappers for kernels/lora_multi_adapter.cu. Twin: backend/cpu/lora_multi_adapter.rs.
//!
//! Design: the shared products run on kernels/lora.cu's tiled GEMM (x W and dY W^T into f32
//! buffers, dW = X^T dY in the storage type); the per-row adapter terms run on two small kernels
//! that read the adapter index of each row on the device (ids uploaded per call, N u32), so no
//! host-side grouping or sorting and no sync:
//!   forward:  t = s_g x A_g (rows kernel, f32), y = xW + t B_g (rows kernel, base = xW)
//!   backward: u = s_g dY B_g^T (rows, f32), dX = dY W^T + u A_g^T (rows, base = dY W^T),
//!             t = x A_g (rows, f32), dA_g = X_g^T u, dB_g = s_g t_g^T dY_g (wgrad kernel, fixed
//!             row order per adapter: deterministic), dW = X^T dY.
//! Scales travel as an f32 array (G).

use super::lora::gemm;
use super::{Arg, CudaStorage};
use crate::backend::cpu::CpuStorage;
use crate::backend::{check_adapter_ids, LoraMultiDims};
use crate::tensor::{DType, Shape};
use crate::{Error, Result};

const FAMILY: &str = "lora_multi_adapter";
const THREADS: u32 = 256;
/// Columns and rows (warps) per block of the two kernels.
const COLS: usize = 32;
const WARPS: usize = 8;

fn sfx(d: DType) -> &'static str {
    if d == DType::BF16 { "bf16" } else { "f32" }
}

fn check(op: &'static str, d: LoraMultiDims, ids: &[u32], scales: &[f64], bufs: &[(&CudaStorage, usize, &str)]) -> Result<DType> {
    check_adapter_ids(op, ids, scales, d)?;
    let t = bufs[0].0.float(op)?.dtype;
    for &(s, len, what) in bufs {
        s.expect(op, t)?;
        if s.len != len {
            return Err(Error::bad_shape(op, &Shape(vec![s.len]), format!("{what}: expected {len} elements for {d:?}")));
        }
    }
    let tiles = d.n.saturating_mul(d.m.max(d.k).div_ceil(COLS));
    if [d.n, d.k, d.m, d.r, d.g].iter().any(|&x| x > i32::MAX as usize / 2) || tiles > i32::MAX as usize || d.g > 65535 {
        return Err(Error::bad_shape(op, &Shape(vec![d.n, d.k, d.m, d.r, d.g]), "dimension too large for the CUDA kernel"));
    }
    Ok(t)
}

/// The device copies of ids (N) and scales (G, f32).
fn upload(x: &CudaStorage, ids: &[u32], scales: &[f64]) -> Result<(CudaStorage, CudaStorage)> {
    let i = CudaStorage::from_cpu(&CpuStorage::U32(ids.to_vec()), x.ordinal())?;
    let s = CudaStorage::from_cpu(&CpuStorage::F32(scales.iter().map(|&s| s as f32).collect()), x.ordinal())?;
    Ok((i, s))
}

/// out (N, ncols) of dtype `out` = base + alpha[g(i)] * P[i] Q_g(i); P (N, kdim) row-major, Q_g
/// element (kk, c) at q[g * qg + kk * qr + c * qc].
#[allow(clippy::too_many_arguments)]
fn rows(p: &CudaStorage, kdim: usize, q: (&CudaStorage, usize, usize, usize), ids: &CudaStorage, alpha: Option<&CudaStorage>, base: Option<&CudaStorage>, n: usize, ncols: usize, out: DType) -> Result<CudaStorage> {
    let dev = p.dev();
    let c = CudaStorage::alloc(dev, out, n * ncols)?;
    if n == 0 || ncols == 0 {
        return Ok(c);
    }
    let name = format!("{FAMILY}_rows_{}_{}_{}", sfx(p.dtype), sfx(q.0.dtype), sfx(out));
    let f = dev.func(FAMILY, &name)?;
    let u = |x: usize| Arg::U64(x as u64);
    let opt = |s: Option<&CudaStorage>| s.map_or(Arg::U64(0), |s| s.arg());
    let args = [
        p.arg(), Arg::I32(kdim as i32), q.0.arg(), u(q.1), u(q.2), u(q.3), ids.arg(), opt(alpha), opt(base), c.arg(), Arg::I32(ncols as i32),
    ];
    dev.launch(&f, ((n * ncols.div_ceil(COLS)) as u32, 1, 1), (THREADS, 1, 1), 0, &args)?;
    Ok(c)
}

/// out (G, pa, qc) of dtype `out`: out[g] = alpha[g] * sum over the rows i of adapter g of
/// P[i]^T Q[i]; P (N, pa), Q (N, qc) row-major.
#[allow(clippy::too_many_arguments)]
fn wgrad(p: &CudaStorage, pa: usize, q: &CudaStorage, qc: usize, ids: &CudaStorage, alpha: Option<&CudaStorage>, n: usize, g: usize, out: DType) -> Result<CudaStorage> {
    let dev = p.dev();
    if n == 0 || pa == 0 || qc == 0 || g == 0 {
        return CudaStorage::zeros(dev, out, g * pa * qc);
    }
    let c = CudaStorage::alloc(dev, out, g * pa * qc)?;
    let name = format!("{FAMILY}_wgrad_{}_{}_{}", sfx(p.dtype), sfx(q.dtype), sfx(out));
    let f = dev.func(FAMILY, &name)?;
    let args = [p.arg(), Arg::I32(pa as i32), q.arg(), Arg::I32(qc as i32), ids.arg(), Arg::I32(n as i32), alpha.map_or(Arg::U64(0), |s| s.arg()), c.arg()];
    let grid = (qc.div_ceil(COLS) as u32, pa.div_ceil(WARPS) as u32, g as u32);
    if grid.1 > 65535 {
        return Err(Error::bad_shape("lora_multi_adapter_backward", &Shape(vec![g, pa, qc]), "too many rows for the wgrad grid"));
    }
    dev.launch(&f, grid, (THREADS, 1, 1), 0, &args)?;
    Ok(c)
}

/// x (N, K), w (K, M), a (G, K, R), b (G, R, M) -> y (N, M)
pub fn lora_multi_adapter(x: &CudaStorage, w: &CudaStorage, a: &CudaStorage, b: &CudaStorage, ids: &[u32], scales: &[f64], d: LoraMultiDims) -> Result<CudaStorage> {
    let LoraMultiDims { n, k, m, r, g } = d;
    let bufs = [(x, n * k, "x (N, K)"), (w, k * m, "w (K, M)"), (a, g * k * r, "a (G, K, R)"), (b, g * r * m, "b (G, R, M)")];
    let dt = check("lora_multi_adapter", d, ids, scales, &bufs)?;
    let dev = x.dev();
    if r == 0 {
        return gemm(dev, (x, k, 1), (w, m, 1), k, None, n, m, 1.0, dt);
    }
    let (idd, sd) = upload(x, ids, scales)?;
    // base = x W: (N, K) x (K, M) f32
    let base = gemm(dev, (x, k, 1), (w, m, 1), k, None, n, m, 1.0, DType::F32)?;
    // t = s_g x A_g: (N, R) f32; A_g (kk, q) = a[g K R + kk R + q]
    let t = rows(x, k, (a, k * r, r, 1), &idd, Some(&sd), None, n, r, DType::F32)?;
    // y = base + t B_g: B_g (q, j) = b[g R M + q M + j]
    rows(&t, r, (b, r * m, m, 1), &idd, None, Some(&base), n, m, dt)
}

/// -> [dx (N, K) if need_dx, dw (K, M) if need_dw, da (G, K, R), db (G, R, M)]
#[allow(clippy::too_many_arguments)]
pub fn lora_multi_adapter_backward(
    x: &CudaStorage, w: &CudaStorage, a: &CudaStorage, b: &CudaStorage, dy: &CudaStorage, ids: &[u32], scales: &[f64], d: LoraMultiDims,
    need_dx: bool, need_dw: bool,
) -> Result<Vec<Option<CudaStorage>>> {
    let LoraMultiDims { n, k, m, r, g } = d;
    let bufs = [(x, n * k, "x (N, K)"), (w, k * m, "w (K, M)"), (a, g * k * r, "a (G, K, R)"), (b, g * r * m, "b (G, R, M)"), (dy, n * m, "dy (N, M)")];
    let dt = check("lora_multi_adapter_backward", d, ids, scales, &bufs)?;
    let dev = x.dev();
    let (idd, sd) = upload(x, ids, scales)?;
    // u = s_g dY B_g^T: (N, R) f32; B_g^T (j, q) = b[g R M + q M + j]
    let u = rows(dy, m, (b, r * m, 1, m), &idd, Some(&sd), None, n, r, DType::F32)?;
    // dA_g = X_g^T u_g: (G, K, R)
    let da = wgrad(x, k, &u, r, &idd, None, n, g, dt)?;
    // t = x A_g (N, R) f32; dB_g = s_g t_g^T dY_g: (G, R, M)
    let t = rows(x, k, (a, k * r, r, 1), &idd, None, None, n, r, DType::F32)?;
    let db = wgrad(&t, r, dy, m, &idd, Some(&sd), n, g, dt)?;
    // dX = dY W^T + u A_g^T: W^T (j, kk) = w[kk M + j], A_g^T (q, kk) = a[g K R + kk R + q]
    let dx = if need_dx {
        let base = gemm(dev, (dy, m, 1), (w, 1, m), m, None, n, k, 1.0, DType::F32)?;
        Some(rows(&u, r, (a, k * r, 1, r), &idd, None, Some(&base), n, k, dt)?)
    } else {
        None
    };
    // dW = X^T dY: (K, N) x (N, M)
    let dw = if need_dw { Some(gemm(dev, (x, 1, k), (dy, m, 1), n, None, k, m, 1.0, dt)?) } else { None };
    Ok(vec![dx, dw, Some(da), Some(db)])
}
