//! Launch wrappers for kernels/attention.cu and kernels/attention_tc.cu. Twin: backend/cpu/attention.rs.
//! Flash-style causal GQA attention on CUDA cores (f32 arithmetic, f32 or bf16 storage), any
//! head dim D <= 128; bf16 runs on tensor cores unless `KILN_ATTN=cores`: the forward in
//! attention_tc.cu (mma.sync, f32 online softmax, P rounded to bf16 for P V), the backward in
//! attention_tc_bwd.cu (dQ with delta, then dK / dV; P and dS rounded to bf16 for their products). The backward runs the forward again for the row logsumexp (lse), then one
//! kernel for dQ (which also writes delta = rowsum(dO * O)) and one for dK, dV: no atomics.

use super::{Arg, CudaStorage};
use crate::backend::cuda::elementwise::typed;
use crate::backend::AttnDims;
use crate::tensor::{DType, Shape};
use crate::{Error, Result};

const FAMILY: &str = "attention";
const THREADS: u32 = 256;
/// Query rows per block (fwd, dQ) = key rows per block (dK/dV).
const ROWS: usize = 32;
/// Streamed tile: keys (fwd, dQ) or queries (dK/dV).
const TILE: usize = 64;
const MAX_D: usize = 128;

/// Refuse what the kernels cannot do, with the same rules as the CPU twin.
fn check(op: &'static str, dm: &AttnDims, bufs: &[(&str, &CudaStorage, usize)]) -> Result<DType> {
    let q = Shape(vec![dm.b, dm.hq, dm.tq, dm.d]);
    if dm.hkv == 0 || dm.hq % dm.hkv != 0 {
        return Err(Error::bad_shape(op, &q, format!("Hq = {} must be a multiple of Hkv = {}", dm.hq, dm.hkv)));
    }
    if dm.tq > dm.tk {
        return Err(Error::bad_shape(op, &q, format!("Tq = {} exceeds Tk = {}", dm.tq, dm.tk)));
    }
    if dm.d > MAX_D {
        return Err(Error::bad_shape(op, &q, format!("the CUDA kernel supports head dim D <= {MAX_D}, got {}", dm.d)));
    }
    if dm.tk > i32::MAX as usize || dm.b * dm.hq > 65535 {
        return Err(Error::bad_shape(op, &q, "Tk must fit in i32 and B * Hq <= 65535"));
    }
    let dt = bufs[0].1.float(op)?.dtype;
    for &(what, s, want) in bufs {
        s.expect(op, dt)?;
        if s.len != want {
            return Err(Error::bad_shape(op, &q, format!("{what} holds {} elements, expected {want}", s.len)));
        }
    }
    Ok(dt)
}

fn common_args(dm: &AttnDims) -> [Arg; 6] {
    [Arg::I32(dm.hq as i32), Arg::I32(dm.hkv as i32), Arg::I32(dm.tq as i32), Arg::I32(dm.tk as i32), Arg::I32(dm.d as i32), Arg::F32(dm.scale as f32)]
}

/// Shared bytes: (32, D) + (32, D) + (64, D|1) + (64, D|1) floats (+ 128 for dK/dV's lse, delta).
fn smem_bytes(d: usize, extra: usize) -> u32 {
    (4 * (2 * ROWS * d + 2 * TILE * (d | 1) + extra)) as u32
}

/// Is the bf16 forward on tensor cores (kernels/attention_tc.cu, the default), or turned off with
/// `KILN_ATTN=cores` (a fallback, and the bench's comparison row)?
pub fn tensor_cores() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("KILN_ATTN").map_or(true, |v| v != "cores"))
}

/// Shared bytes of `attn_fwd_tc<dp>_bf16`: Q [64][dp + 8] and K, V [2][64][dp + 8], bf16.
fn tc_smem_bytes(dp: usize) -> u32 {
    (5 * TC_ROWS * (dp + 8) * 2) as u32
}
/// Query rows per block of the tensor-core forward.
const TC_ROWS: usize = 64;

/// Forward into `o`, and the row logsumexp into `lse` when given: bf16 on tensor cores unless
/// `KILN_ATTN=cores` (or `cores`), otherwise the CUDA-core kernel.
fn forward(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, o: &CudaStorage, lse: Option<&CudaStorage>, dm: &AttnDims) -> Result<()> {
    forward_on(q, k, v, o, lse, dm, tensor_cores())
}

#[allow(clippy::too_many_arguments)]
fn forward_on(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, o: &CudaStorage, lse: Option<&CudaStorage>, dm: &AttnDims, tc: bool) -> Result<()> {
    let dev = q.dev();
    if tc && q.dtype == DType::BF16 && dm.d > 0 {
        let dp = if dm.d <= 64 { 64 } else { 128 };
        let f = dev.func("attention_tc", &format!("attn_fwd_tc{dp}_bf16"))?;
        let grid = (dm.tq.div_ceil(TC_ROWS) as u32, (dm.b * dm.hq) as u32, 1);
        let mut args = vec![q.arg(), k.arg(), v.arg(), o.arg(), lse.map(|l| l.arg()).unwrap_or(Arg::Ptr(0))];
        args.extend(common_args(dm));
        args.push(Arg::I32((dm.d % 8 == 0) as i32)); // 16-byte row loads
        // SAFETY: arguments match attn_fwd_tc*_bf16; buffer lengths were checked against dm.
        return dev.launch(&f, grid, (128, 1, 1), tc_smem_bytes(dp), &args);
    }
    let f = dev.func(FAMILY, &typed("attention", "attn_fwd", q.dtype)?)?;
    let grid = (dm.tq.div_ceil(ROWS) as u32, (dm.b * dm.hq) as u32, 1);
    let mut args = vec![q.arg(), k.arg(), v.arg(), o.arg(), lse.map(|l| l.arg()).unwrap_or(Arg::Ptr(0))];
    args.extend(common_args(dm));
    // SAFETY: arguments match attn_fwd_*; buffer lengths were checked against dm.
    dev.launch(&f, grid, (THREADS, 1, 1), smem_bytes(dm.d, 0), &args)
}

/// -> o (B, Hq, Tq, D)
pub fn attention(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, dims: AttnDims) -> Result<CudaStorage> {
    attention_on(q, k, v, dims, tensor_cores())
}

/// The forward with the bf16 tensor-core kernel allowed (`tc`) or not (the bench times both).
pub fn attention_on(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, dims: AttnDims, tc: bool) -> Result<CudaStorage> {
    let (nq, nk) = (dims.b * dims.hq * dims.tq * dims.d, dims.b * dims.hkv * dims.tk * dims.d);
    let dt = check("attention", &dims, &[("q", q, nq), ("k", k, nk), ("v", v, nk)])?;
    let o = CudaStorage::alloc(q.dev(), dt, nq)?;
    if nq == 0 {
        return Ok(o);
    }
    forward_on(q, k, v, &o, None, &dims, tc)?;
    Ok(o)
}

/// -> [dq (B, Hq, Tq, D), dk (B, Hkv, Tk, D), dv (B, Hkv, Tk, D)]
pub fn attention_backward(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, dout: &CudaStorage, dims: AttnDims) -> Result<Vec<CudaStorage>> {
    let dm = dims;
    let (nq, nk) = (dm.b * dm.hq * dm.tq * dm.d, dm.b * dm.hkv * dm.tk * dm.d);
    let dt = check("attention_backward", &dm, &[("q", q, nq), ("k", k, nk), ("v", v, nk), ("dout", dout, nq)])?;
    let dev = q.dev();
    if nq == 0 {
        // No query sees any key: every gradient is zero (the CPU twin returns zeros too).
        return Ok(vec![CudaStorage::zeros(dev, dt, nq)?, CudaStorage::zeros(dev, dt, nk)?, CudaStorage::zeros(dev, dt, nk)?]);
    }
    let rows = dm.b * dm.hq * dm.tq;
    let (o, lse, delta) = (CudaStorage::alloc(dev, dt, nq)?, CudaStorage::alloc(dev, DType::F32, rows)?, CudaStorage::alloc(dev, DType::F32, rows)?);
    forward(q, k, v, &o, Some(&lse), &dm)?;

    let dq = CudaStorage::alloc(dev, dt, nq)?;
    let (dk, dv) = (CudaStorage::alloc(dev, dt, nk)?, CudaStorage::alloc(dev, dt, nk)?);
    if tensor_cores() && dt == DType::BF16 {
        backward_tc(q, k, v, &o, dout, &lse, &delta, [&dq, &dk, &dv], &dm)?;
        return Ok(vec![dq, dk, dv]);
    }
    let f = dev.func(FAMILY, &typed("attention_backward", "attn_bwd_dq", dt)?)?;
    let grid = (dm.tq.div_ceil(ROWS) as u32, (dm.b * dm.hq) as u32, 1);
    let mut args = vec![q.arg(), k.arg(), v.arg(), o.arg(), dout.arg(), lse.arg(), delta.arg(), dq.arg()];
    args.extend(common_args(&dm));
    // SAFETY: arguments match attn_bwd_dq_*; lse and delta hold B*Hq*Tq floats.
    dev.launch(&f, grid, (THREADS, 1, 1), smem_bytes(dm.d, 0), &args)?;

    if nk > 0 {
        let f = dev.func(FAMILY, &typed("attention_backward", "attn_bwd_dkdv", dt)?)?;
        let grid = (dm.tk.div_ceil(ROWS) as u32, (dm.b * dm.hkv) as u32, 1);
        let mut args = vec![q.arg(), k.arg(), v.arg(), dout.arg(), lse.arg(), delta.arg(), dk.arg(), dv.arg()];
        args.extend(common_args(&dm));
        // SAFETY: arguments match attn_bwd_dkdv_*; delta was written by the dQ launch before it.
        dev.launch(&f, grid, (THREADS, 1, 1), smem_bytes(dm.d, 2 * TILE), &args)?;
    }
    Ok(vec![dq, dk, dv])
}

/// The bf16 backward on tensor cores (kernels/attention_tc_bwd.cu): dQ (and delta), then dK, dV;
/// `lse` from the forward just run. Shared bytes: six [64][dp + 8] bf16 tiles and 64 (dQ) or 128
/// (dK / dV) f32 pairs of lse and delta.
#[allow(clippy::too_many_arguments)]
fn backward_tc(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, o: &CudaStorage, dout: &CudaStorage, lse: &CudaStorage, delta: &CudaStorage,
    [dq, dk, dv]: [&CudaStorage; 3], dm: &AttnDims,
) -> Result<()> {
    let dev = q.dev();
    let dp = if dm.d <= 64 { 64 } else { 128 };
    let tiles = (6 * TC_ROWS * (dp + 8) * 2) as u32;
    let vec = Arg::I32((dm.d % 8 == 0) as i32);
    let f = dev.func("attention_tc_bwd", &format!("attn_bwd_dq_tc{dp}_bf16"))?;
    let mut args = vec![q.arg(), k.arg(), v.arg(), o.arg(), dout.arg(), lse.arg(), delta.arg(), dq.arg()];
    args.extend(common_args(dm));
    args.push(vec);
    // SAFETY: arguments match attn_bwd_dq_tc*_bf16; lse and delta hold B*Hq*Tq floats.
    dev.launch(&f, (dm.tq.div_ceil(TC_ROWS) as u32, (dm.b * dm.hq) as u32, 1), (128, 1, 1), tiles + 2 * 64 * 4, &args)?;
    if dm.tk > 0 {
        let f = dev.func("attention_tc_bwd", &format!("attn_bwd_dkdv_tc{dp}_bf16"))?;
        let mut args = vec![q.arg(), k.arg(), v.arg(), dout.arg(), lse.arg(), delta.arg(), dk.arg(), dv.arg()];
        args.extend(common_args(dm));
        args.push(vec);
        // SAFETY: arguments match attn_bwd_dkdv_tc*_bf16; delta was written by the dQ launch.
        // 2 dp threads: one set of four warps per 64 columns of dK and dV.
        dev.launch(&f, (dm.tk.div_ceil(TC_ROWS) as u32, (dm.b * dm.hkv) as u32, 1), (2 * dp as u32, 1, 1), tiles + 4 * 64 * 4, &args)?;
    }
    Ok(())
}
