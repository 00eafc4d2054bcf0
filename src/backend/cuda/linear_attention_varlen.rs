//! Launch wrappers for `linattn_varlen_<f32|bf16>` (kernels/linear_attention.cu), packed
//! variable-length linear attention. Twin: backend/cpu/linear_attention_varlen.rs.
//!
//! Design: one block per (head, sequence, 64-wide Dv slice) runs the sequential chunk body of the
//! fixed-length kernel on that sequence's rows, found through cu_seqlens (uploaded per call, N + 1
//! u32). One launch covers every sequence of every head, with no per-sequence host loop and no
//! padding; the chunks restart at each sequence start, exactly as in the CPU twin. (Trade-off:
//! each block walks its sequence's chunks in order, so one very long sequence is not split over
//! blocks the way the fixed-length two-phase path splits T.)
//! The backward reuses the three-launch mapping of backend/cuda/linear_attention.rs (dQ, dV, dK
//! as forward passes of the same kernel), with dsf, the gradient of s_final, as the initial
//! state of the two reverse passes: G_end = dsf, so dK, dV and dS0 include it.

use super::linear_attention_tc as tc;
use super::{Arg, CudaStorage};
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::elementwise::typed;
use crate::backend::cuda::linear_attention::{smem_bytes, state_args, SMEM_MAX};
use crate::backend::{check_cu_seqlens, LinAttnDims};
use crate::tensor::Shape;
use crate::{Error, Result};

const FAMILY: &str = "linear_attention";
const THREADS: u32 = 256;

fn check(op: &'static str, cu: &[u32], d: LinAttnDims, seqs: &[(&CudaStorage, usize)], states: &[Option<&CudaStorage>]) -> Result<()> {
    check_cu_seqlens(op, cu, d.t)?;
    let t = seqs[0].0.float(op)?.dtype;
    for &(s, width) in seqs {
        s.expect(op, t)?;
        if s.len != d.bh * d.t * width {
            return Err(Error::bad_shape(op, &Shape(vec![s.len]), format!("expected (H, T, D) = ({}, {}, {width}) elements", d.bh, d.t)));
        }
    }
    let nseq = cu.len() - 1;
    for s in states.iter().flatten() {
        s.expect(op, t)?;
        if s.len != nseq * d.bh * d.dk * d.dv {
            return Err(Error::bad_shape(op, &Shape(vec![s.len]), format!("states must be (N, H, Dk, Dv) = ({nseq}, {}, {}, {})", d.bh, d.dk, d.dv)));
        }
    }
    let blocks = d.bh.saturating_mul(nseq);
    for w in [d.dk, d.dv] {
        if smem_bytes(w) > SMEM_MAX || d.t > i32::MAX as usize || blocks > i32::MAX as usize {
            return Err(Error::bad_shape(op, &Shape(vec![d.bh, d.t, w]), "head dim or H x N too large for the CUDA kernel (head dim max about 700)"));
        }
    }
    Ok(())
}

/// One launch over every (head, sequence): o (H, T, dv) and, when given, s_final (N, H, dk, dv).
/// `s0`: (buffer, row stride, column stride) of each initial state seen as (dk, dv).
#[allow(clippy::too_many_arguments)]
fn launch(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<(&CudaStorage, usize, usize)>, o: &CudaStorage,
    s_final: Option<&CudaStorage>, cu: &CudaStorage, nseq: usize, d: LinAttnDims, rev: bool,
) -> Result<()> {
    let (h, t, dk, dv) = (d.bh, d.t, d.dk, d.dv);
    if h == 0 || nseq == 0 || dv == 0 {
        return Ok(());
    }
    if let (true, Some(dkp)) = (tc::enabled(), tc::width(q.dtype, dk)) {
        return tc::launch_varlen(q, k, v, state_args(s0, s_final), o, cu, nseq, h, t, dk, dv, rev, dkp);
    }
    let dev = q.dev();
    let (s0a, ss0, ss1, sfa) = state_args(s0, s_final);
    let f = dev.func(FAMILY, &typed(FAMILY, "linattn_varlen", q.dtype)?)?;
    let grid = ((h * nseq) as u32, dv.div_ceil(64) as u32, 1);
    let i = |x: usize| Arg::I32(x as i32);
    let args = [
        q.arg(), k.arg(), v.arg(), s0a, o.arg(), sfa, cu.arg(),
        i(nseq), i(t), i(dk), i(dv), Arg::U64(ss0 as u64), Arg::U64(ss1 as u64), Arg::I32(rev as i32),
    ];
    dev.launch(&f, grid, (THREADS, 1, 1), smem_bytes(dk) as u32, &args)
}

fn upload_cu(q: &CudaStorage, cu: &[u32]) -> Result<CudaStorage> {
    CudaStorage::from_cpu(&CpuStorage::U32(cu.to_vec()), q.ordinal())
}

/// -> [o (H, T, Dv), s_final (N, H, Dk, Dv)]
pub fn linear_attention_varlen(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, cu: &[u32], d: LinAttnDims) -> Result<Vec<CudaStorage>> {
    const OP: &str = "linear_attention_varlen";
    check(OP, cu, d, &[(q, d.dk), (k, d.dk), (v, d.dv)], &[s0])?;
    let (dev, nseq) = (q.dev(), cu.len() - 1);
    let s_final = CudaStorage::alloc(dev, q.dtype, nseq * d.bh * d.dk * d.dv)?;
    if d.dk == 0 || d.dv == 0 {
        // o = q S with an empty inner dimension, or empty outputs: zeros; the states are empty.
        return Ok(vec![CudaStorage::zeros(dev, q.dtype, d.bh * d.t * d.dv)?, s_final]);
    }
    let o = CudaStorage::alloc(dev, q.dtype, d.bh * d.t * d.dv)?;
    let cud = upload_cu(q, cu)?;
    launch(q, k, v, s0.map(|s| (s, d.dv, 1)), &o, Some(&s_final), &cud, nseq, d, false)?;
    Ok(vec![o, s_final])
}

/// -> [dq (H, T, Dk), dk (H, T, Dk), dv (H, T, Dv), ds0 (N, H, Dk, Dv)]; dsf = s_final's gradient.
#[allow(clippy::too_many_arguments)]
pub fn linear_attention_varlen_backward(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dout: &CudaStorage, dsf: Option<&CudaStorage>,
    cu: &[u32], d: LinAttnDims,
) -> Result<Vec<CudaStorage>> {
    const OP: &str = "linear_attention_varlen_backward";
    check(OP, cu, d, &[(q, d.dk), (k, d.dk), (v, d.dv), (dout, d.dv)], &[s0, dsf])?;
    let (dev, dt, nseq) = (q.dev(), q.dtype, cu.len() - 1);
    let sz = nseq * d.bh * d.dk * d.dv;
    if d.dk == 0 || d.dv == 0 {
        let z = |len: usize| CudaStorage::zeros(dev, dt, len);
        return Ok(vec![z(d.bh * d.t * d.dk)?, z(d.bh * d.t * d.dk)?, z(d.bh * d.t * d.dv)?, z(sz)?]);
    }
    let dq = CudaStorage::alloc(dev, dt, d.bh * d.t * d.dk)?;
    let dk = CudaStorage::alloc(dev, dt, d.bh * d.t * d.dk)?;
    let dv = CudaStorage::alloc(dev, dt, d.bh * d.t * d.dv)?;
    let ds0 = CudaStorage::alloc(dev, dt, sz)?;
    let cud = upload_cu(q, cu)?;
    let td = LinAttnDims { dk: d.dv, dv: d.dk, ..d };
    // dQ = dO S^T: (q, k, v) = (dO, V, K), state S^T (Dv, Dk), s0^T read with strides (1, Dv).
    launch(dout, v, k, s0.map(|s| (s, 1, d.dv)), &dq, None, &cud, nseq, td, false)?;
    // dV = K G, G_end = dsf, final state G_0 = dS0 (Dk, Dv).
    launch(k, q, dout, dsf.map(|s| (s, d.dv, 1)), &dv, Some(&ds0), &cud, nseq, d, true)?;
    // dK = V G^T, state G^T (Dv, Dk), G_end^T = dsf^T.
    launch(v, dout, q, dsf.map(|s| (s, 1, d.dv)), &dk, None, &cud, nseq, td, true)?;
    Ok(vec![dq, dk, dv, ds0])
}
