//! Packed variable-length causal linear attention, forward and backward. Twin of the
//! `linattn_varlen_*` kernel in kernels/linear_attention.cu.
//!
//! Why: batches of sequences of different lengths are packed along T without padding; the state
//! must restart at every sequence start, so no information crosses sequences.
//! Source: sequence n owns rows `cu[n]..cu[n + 1]` of every head; on those rows the op is exactly
//! backend/cpu/linear_attention.rs's, started from `s0[n, h]` (or zeros), and its final state is
//! `s_final[n, h]`. The backward also takes dsf, the gradient of s_final: it is the reverse-sweep
//! state at the end of each sequence (dS_{end} = dsf), so dK, dV and dS0 include the final
//! state's contribution (dK_t += v_t dsf^T, dV_t += k_t dsf, dS0 += dsf) in the same sweep.
//!
//! Shapes: q, k (H, T, Dk), v (H, T, Dv) with H = heads (batch 1), states (N, H, Dk, Dv),
//! cu (N + 1). Threading: rayon over heads; sequences run in order inside a head.

use super::linear_attention::{head_backward_chunked, head_backward_naive, head_forward_chunked, head_forward_naive, HeadGrads, HeadInputs};
use super::{CpuStorage, Real};
use crate::backend::{check_cu_seqlens, LinAttnDims};
use crate::tensor::Shape;
use crate::{Error, Result};
use rayon::prelude::*;

/// -> [o (H, T, Dv), s_final (N, H, Dk, Dv)]
pub fn linear_attention_varlen(q: &CpuStorage, k: &CpuStorage, v: &CpuStorage, s0: Option<&CpuStorage>, cu: &[u32], d: LinAttnDims, chunked: bool) -> Result<Vec<CpuStorage>> {
    const OP: &str = "linear_attention_varlen";
    check(OP, cu, d, &[(q, d.t * d.dk), (k, d.t * d.dk), (v, d.t * d.dv)], &[s0])?;
    let s0 = s0.cloned().unwrap_or_else(|| CpuStorage::zeros(q.dtype(), state_len(cu, d)));
    let s0 = &s0;
    crate::float_op_multi!(OP, (q, k, v, s0), forward(q, k, v, s0, cu, d, chunked))
}

/// -> [dq (H, T, Dk), dk (H, T, Dk), dv (H, T, Dv), ds0 (N, H, Dk, Dv)]
#[allow(clippy::too_many_arguments)]
pub fn linear_attention_varlen_backward(
    q: &CpuStorage, k: &CpuStorage, v: &CpuStorage, s0: Option<&CpuStorage>, dout: &CpuStorage, dsf: Option<&CpuStorage>,
    cu: &[u32], d: LinAttnDims, chunked: bool,
) -> Result<Vec<CpuStorage>> {
    const OP: &str = "linear_attention_varlen_backward";
    check(OP, cu, d, &[(q, d.t * d.dk), (k, d.t * d.dk), (v, d.t * d.dv), (dout, d.t * d.dv)], &[s0, dsf])?;
    let zeros = || CpuStorage::zeros(q.dtype(), state_len(cu, d));
    let (s0, dsf) = (s0.cloned().unwrap_or_else(zeros), dsf.cloned().unwrap_or_else(zeros));
    let (s0, dsf) = (&s0, &dsf);
    crate::float_op_multi!(OP, (q, k, v, s0, dout, dsf), backward(q, k, v, s0, dout, dsf, cu, d, chunked))
}

fn state_len(cu: &[u32], d: LinAttnDims) -> usize {
    (cu.len() - 1) * d.bh * d.dk * d.dv
}

/// Offsets valid, buffers of the right lengths (per head for sequences, (N, H, Dk, Dv) for states).
fn check(op: &'static str, cu: &[u32], d: LinAttnDims, seqs: &[(&CpuStorage, usize)], states: &[Option<&CpuStorage>]) -> Result<()> {
    check_cu_seqlens(op, cu, d.t)?;
    for &(s, per_head) in seqs {
        if s.len() != d.bh * per_head {
            return Err(Error::bad_shape(op, &Shape(vec![s.len()]), format!("expected H x T x D = {} x {} elements", d.bh, per_head)));
        }
    }
    for s in states.iter().flatten() {
        if s.len() != state_len(cu, d) {
            let want = format!("states must be (N, H, Dk, Dv) = ({}, {}, {}, {})", cu.len() - 1, d.bh, d.dk, d.dv);
            return Err(Error::bad_shape(op, &Shape(vec![s.len()]), want));
        }
    }
    Ok(())
}

/// The (start, len) of every sequence.
fn segments(cu: &[u32]) -> impl Iterator<Item = (usize, usize)> + '_ {
    cu.windows(2).map(|w| (w[0] as usize, (w[1] - w[0]) as usize))
}

/// Copy per-head states hs[h] (N, Dk, Dv) into (N, H, Dk, Dv).
fn scatter_states<T: Real>(hs: Vec<Vec<T>>, nseq: usize, sz: usize) -> Vec<T> {
    let nh = hs.len();
    let mut out = vec![T::ZERO; nseq * nh * sz];
    for (h, st) in hs.iter().enumerate() {
        for n in 0..nseq {
            out[(n * nh + h) * sz..(n * nh + h + 1) * sz].copy_from_slice(&st[n * sz..(n + 1) * sz]);
        }
    }
    out
}

fn forward<T: Real>(q: &[T], k: &[T], v: &[T], s0: &[T], cu: &[u32], d: LinAttnDims, chunked: bool) -> Vec<Vec<T>> {
    let (t, dk, dv, nh, sz) = (d.t, d.dk, d.dv, d.bh, d.dk * d.dv);
    let nseq = cu.len() - 1;
    let mut o = vec![T::ZERO; nh * t * dv];
    // One task per head: its o rows (T, Dv) and its final states (N, Dk, Dv).
    let head = |h: usize, o: &mut [T]| -> Vec<T> {
        let mut sf = vec![T::ZERO; nseq * sz];
        for (n, (t0, len)) in segments(cu).enumerate() {
            let s = &mut sf[n * sz..(n + 1) * sz];
            s.copy_from_slice(&s0[(n * nh + h) * sz..(n * nh + h + 1) * sz]);
            if len == 0 || sz == 0 {
                continue;
            }
            let (rk, rv) = ((h * t + t0) * dk..(h * t + t0 + len) * dk, (h * t + t0) * dv..(h * t + t0 + len) * dv);
            let os = &mut o[t0 * dv..(t0 + len) * dv];
            let ds = LinAttnDims { bh: 1, t: len, dk, dv };
            if chunked {
                head_forward_chunked(&q[rk.clone()], &k[rk], &v[rv], os, s, ds);
            } else {
                head_forward_naive(&q[rk.clone()], &k[rk], &v[rv], os, s, ds);
            }
        }
        sf
    };
    let hs: Vec<Vec<T>> = if t * dv > 0 {
        o.par_chunks_mut(t * dv).enumerate().map(|(h, o)| head(h, o)).collect()
    } else {
        (0..nh).map(|h| head(h, &mut [])).collect()
    };
    vec![o, scatter_states(hs, nseq, sz)]
}

#[allow(clippy::too_many_arguments)]
fn backward<T: Real>(q: &[T], k: &[T], v: &[T], s0: &[T], dout: &[T], dsf: &[T], cu: &[u32], d: LinAttnDims, chunked: bool) -> Vec<Vec<T>> {
    let (t, dk, dv, nh, sz) = (d.t, d.dk, d.dv, d.bh, d.dk * d.dv);
    let nseq = cu.len() - 1;
    let (mut dq, mut dkk, mut dvv) = (vec![T::ZERO; nh * t * dk], vec![T::ZERO; nh * t * dk], vec![T::ZERO; nh * t * dv]);
    // One task per head: its gradient rows and its dS0 (N, Dk, Dv), seeded with dsf.
    let head = |h: usize, dq: &mut [T], dk_: &mut [T], dv_: &mut [T]| -> Vec<T> {
        let mut ds = vec![T::ZERO; nseq * sz];
        for (n, (t0, len)) in segments(cu).enumerate() {
            let (hs, st) = ((n * nh + h) * sz..(n * nh + h + 1) * sz, n * sz..(n + 1) * sz);
            ds[st.clone()].copy_from_slice(&dsf[hs.clone()]);
            if len == 0 || sz == 0 {
                continue;
            }
            let (rk, rv) = ((h * t + t0) * dk..(h * t + t0 + len) * dk, (h * t + t0) * dv..(h * t + t0 + len) * dv);
            let ins = HeadInputs { q: &q[rk.clone()], k: &k[rk], v: &v[rv.clone()], s0: &s0[hs], dout: &dout[rv] };
            let (lk, lv) = (t0 * dk..(t0 + len) * dk, t0 * dv..(t0 + len) * dv);
            let outs = HeadGrads { dq: &mut dq[lk.clone()], dk: &mut dk_[lk], dv: &mut dv_[lv], ds: &mut ds[st] };
            let dd = LinAttnDims { bh: 1, t: len, dk, dv };
            if chunked {
                head_backward_chunked(ins, outs, dd);
            } else {
                head_backward_naive(ins, outs, dd);
            }
        }
        ds
    };
    let hs: Vec<Vec<T>> = if t * dk * dv > 0 {
        let it = dq.par_chunks_mut(t * dk).zip(dkk.par_chunks_mut(t * dk)).zip(dvv.par_chunks_mut(t * dv));
        it.enumerate().map(|(h, ((a, b), c))| head(h, a, b, c)).collect()
    } else {
        (0..nh).map(|h| head(h, &mut [], &mut [], &mut [])).collect()
    };
    vec![dq, dkk, dvv, scatter_states(hs, nseq, sz)]
}
