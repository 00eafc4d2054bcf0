//! Causal linear attention (Katharopoulos et al., "Transformers are RNNs", 2020), forward and
//! backward, in two forms: the naive per-step recurrence (the spec) and the chunked form of
//! flash-linear-attention (the fast one). Twin of kernels/linear_attention.cu.
//!
//! Why: linear attention replaces softmax(QK^T)V by a running state, so a sequence costs O(T D^2)
//! instead of O(T^2 D), and the state can be carried across calls (s0 in, s_final out).
//!
//! Source (no scale, no feature map: callers scale and map q, k first):
//!   S_t = S0 + sum_{s <= t} k_s^T v_s          o_t = q_t S_t
//! Chunked (KERNELS.md, C = 64), with S_i the state before chunk i and M the causal mask
//! (diagonal included):
//!   O_i = Q_i S_i + (Q_i K_i^T . M) V_i        S_{i+1} = S_i + K_i^T V_i
//! Backward, with dS_{i+1} = sum_{j > i} Q_j^T dO_j accumulated from the end:
//!   dQ_i = dO_i S_i^T + (dO_i V_i^T . M) K_i
//!   dK_i = V_i dS_{i+1}^T + (dO_i V_i^T . M)^T Q_i
//!   dV_i = K_i dS_{i+1} + (Q_i K_i^T . M)^T dO_i
//!   dS0  = sum_i Q_i^T dO_i
//!
//! Shapes: q, k (BH, T, Dk), v (BH, T, Dv), states (BH, Dk, Dv); BH = batch x heads.
//! Threading: rayon over BH, one head per task; the small per-chunk products are faer GEMMs
//! (`Real::gemm`, sequential inside a head). States accumulate in the working precision.

use super::{CpuStorage, Real};
use crate::backend::LinAttnDims;
use crate::tensor::Shape;
use crate::{Error, Result};
use rayon::prelude::*;

/// Chunk length of the chunked form.
pub const CHUNK: usize = 64;

/// -> [o (BH, T, Dv), s_final (BH, Dk, Dv)]
pub fn linear_attention(q: &CpuStorage, k: &CpuStorage, v: &CpuStorage, s0: Option<&CpuStorage>, d: LinAttnDims, chunked: bool) -> Result<Vec<CpuStorage>> {
    const OP: &str = "linear_attention";
    check_lens(OP, d, &[(q, d.dk), (k, d.dk), (v, d.dv)], s0)?;
    match s0 {
        None => crate::float_op_multi!(OP, (q, k, v), forward(q, k, v, None, d, chunked)),
        Some(s0) => crate::float_op_multi!(OP, (q, k, v, s0), forward(q, k, v, Some(s0), d, chunked)),
    }
}

/// Backward of `o` only -> [dq (BH, T, Dk), dk (BH, T, Dk), dv (BH, T, Dv), ds0 (BH, Dk, Dv)].
#[allow(clippy::too_many_arguments)]
pub fn linear_attention_backward(q: &CpuStorage, k: &CpuStorage, v: &CpuStorage, s0: Option<&CpuStorage>, dout: &CpuStorage, d: LinAttnDims, chunked: bool) -> Result<Vec<CpuStorage>> {
    const OP: &str = "linear_attention_backward";
    check_lens(OP, d, &[(q, d.dk), (k, d.dk), (v, d.dv), (dout, d.dv)], s0)?;
    match s0 {
        None => crate::float_op_multi!(OP, (q, k, v, dout), backward(q, k, v, None, dout, d, chunked)),
        Some(s0) => crate::float_op_multi!(OP, (q, k, v, dout, s0), backward(q, k, v, Some(s0), dout, d, chunked)),
    }
}

/// Buffers of the wrong length would index out of bounds: refuse them by name instead.
fn check_lens(op: &'static str, d: LinAttnDims, seqs: &[(&CpuStorage, usize)], s0: Option<&CpuStorage>) -> Result<()> {
    for &(s, width) in seqs {
        if s.len() != d.bh * d.t * width {
            return Err(Error::bad_shape(op, &Shape(vec![s.len()]), format!("expected (BH, T, D) = ({}, {}, {width}) elements", d.bh, d.t)));
        }
    }
    match s0 {
        Some(s) if s.len() != d.bh * d.dk * d.dv => {
            Err(Error::bad_shape(op, &Shape(vec![s.len()]), format!("the initial state must be (BH, Dk, Dv) = ({}, {}, {})", d.bh, d.dk, d.dv)))
        }
        _ => Ok(()),
    }
}

/// The initial states (BH, Dk, Dv): a copy of s0, or zeros.
fn initial_state<T: Real>(s0: Option<&[T]>, d: LinAttnDims) -> Vec<T> {
    s0.map_or_else(|| vec![T::ZERO; d.bh * d.dk * d.dv], <[T]>::to_vec)
}

fn forward<T: Real>(q: &[T], k: &[T], v: &[T], s0: Option<&[T]>, d: LinAttnDims, chunked: bool) -> Vec<Vec<T>> {
    let (t, dk, dv) = (d.t, d.dk, d.dv);
    let mut o = vec![T::ZERO; d.bh * t * dv];
    let mut s = initial_state(s0, d);
    if t * dv > 0 && dk * dv > 0 {
        o.par_chunks_mut(t * dv).zip(s.par_chunks_mut(dk * dv)).enumerate().for_each(|(h, (o, s))| {
            let (q, k, v) = (&q[h * t * dk..(h + 1) * t * dk], &k[h * t * dk..(h + 1) * t * dk], &v[h * t * dv..(h + 1) * t * dv]);
            if chunked {
                head_forward_chunked(q, k, v, o, s, d);
            } else {
                head_forward_naive(q, k, v, o, s, d);
            }
        });
    }
    vec![o, s]
}

/// One head, step by step. q, k: (T, Dk), v, o: (T, Dv), s: (Dk, Dv) updated in place.
pub(super) fn head_forward_naive<T: Real>(q: &[T], k: &[T], v: &[T], o: &mut [T], s: &mut [T], d: LinAttnDims) {
    let (dk, dv) = (d.dk, d.dv);
    for t in 0..d.t {
        let (qt, kt, vt) = (&q[t * dk..(t + 1) * dk], &k[t * dk..(t + 1) * dk], &v[t * dv..(t + 1) * dv]);
        let ot = &mut o[t * dv..(t + 1) * dv];
        for a in 0..dk {
            // S[a, :] += k_t[a] v_t, then o_t += q_t[a] S[a, :]
            let row = &mut s[a * dv..(a + 1) * dv];
            for ((sb, &vb), ob) in row.iter_mut().zip(vt).zip(ot.iter_mut()) {
                *sb += kt[a] * vb;
                *ob += qt[a] * *sb;
            }
        }
    }
}

/// One head, one chunk of C rows at a time; s: (Dk, Dv) is the running state, updated in place.
pub(super) fn head_forward_chunked<T: Real>(q: &[T], k: &[T], v: &[T], o: &mut [T], s: &mut [T], d: LinAttnDims) {
    let (dk, dv) = (d.dk, d.dv);
    let mut a = [T::ZERO; CHUNK * CHUNK]; // (n, n) scores of one chunk
    for c0 in (0..d.t).step_by(CHUNK) {
        let n = CHUNK.min(d.t - c0);
        let (qc, kc, vc) = (&q[c0 * dk..(c0 + n) * dk], &k[c0 * dk..(c0 + n) * dk], &v[c0 * dv..(c0 + n) * dv]);
        let oc = &mut o[c0 * dv..(c0 + n) * dv];
        let a = &mut a[..n * n];
        // A = (Q K^T) . M: (n, Dk) x (Dk, n)
        T::gemm(a, qc, kc, n, dk, n, false, true, T::ONE, false, false);
        mask_upper(a, n);
        // O = Q S + A V: (n, Dk) x (Dk, Dv) + (n, n) x (n, Dv)
        T::gemm(oc, qc, s, n, dk, dv, false, false, T::ONE, false, false);
        T::gemm(oc, a, vc, n, n, dv, false, false, T::ONE, true, false);
        // S += K^T V: (Dk, n) x (n, Dv)
        T::gemm(s, kc, vc, dk, n, dv, true, false, T::ONE, true, false);
    }
}

/// Zero the strictly upper triangle of a row-major (n, n) matrix (entries where key > query).
fn mask_upper<T: Real>(a: &mut [T], n: usize) {
    for (r, row) in a.chunks_exact_mut(n).enumerate() {
        row[r + 1..].fill(T::ZERO);
    }
}

#[allow(clippy::too_many_arguments)]
fn backward<T: Real>(q: &[T], k: &[T], v: &[T], s0: Option<&[T]>, dout: &[T], d: LinAttnDims, chunked: bool) -> Vec<Vec<T>> {
    let (t, dk, dv) = (d.t, d.dk, d.dv);
    let mut dq = vec![T::ZERO; d.bh * t * dk];
    let mut dkk = vec![T::ZERO; d.bh * t * dk];
    let mut dvv = vec![T::ZERO; d.bh * t * dv];
    let mut ds = vec![T::ZERO; d.bh * dk * dv];
    let s = initial_state(s0, d);
    if t * dk * dv > 0 {
        let grads = dq.par_chunks_mut(t * dk).zip(dkk.par_chunks_mut(t * dk)).zip(dvv.par_chunks_mut(t * dv)).zip(ds.par_chunks_mut(dk * dv));
        grads.enumerate().for_each(|(h, (((dq, dk_), dv_), ds))| {
            let ins = HeadInputs {
                q: &q[h * t * dk..(h + 1) * t * dk],
                k: &k[h * t * dk..(h + 1) * t * dk],
                v: &v[h * t * dv..(h + 1) * t * dv],
                s0: &s[h * dk * dv..(h + 1) * dk * dv],
                dout: &dout[h * t * dv..(h + 1) * t * dv],
            };
            let outs = HeadGrads { dq, dk: dk_, dv: dv_, ds };
            if chunked {
                head_backward_chunked(ins, outs, d);
            } else {
                head_backward_naive(ins, outs, d);
            }
        });
    }
    vec![dq, dkk, dvv, ds]
}

/// One head's inputs: q, k (T, Dk), v, dout (T, Dv), s0 (Dk, Dv).
pub(super) struct HeadInputs<'a, T> {
    pub(super) q: &'a [T],
    pub(super) k: &'a [T],
    pub(super) v: &'a [T],
    pub(super) s0: &'a [T],
    pub(super) dout: &'a [T],
}

/// One head's gradients (zeroed on entry): dq, dk (T, Dk), dv (T, Dv), ds (Dk, Dv).
pub(super) struct HeadGrads<'a, T> {
    pub(super) dq: &'a mut [T],
    pub(super) dk: &'a mut [T],
    pub(super) dv: &'a mut [T],
    pub(super) ds: &'a mut [T],
}

/// One head, step by step: a forward sweep rebuilds S_t for dq_t = do_t S_t^T, then a backward
/// sweep accumulates G_t = sum_{s >= t} q_s^T do_s (in `g.ds`) for dk_t = v_t G_t^T, dv_t = k_t G_t.
pub(super) fn head_backward_naive<T: Real>(x: HeadInputs<T>, g: HeadGrads<T>, d: LinAttnDims) {
    let (dk, dv) = (d.dk, d.dv);
    let mut s = x.s0.to_vec();
    for t in 0..d.t {
        let (kt, vt, dot) = (&x.k[t * dk..(t + 1) * dk], &x.v[t * dv..(t + 1) * dv], &x.dout[t * dv..(t + 1) * dv]);
        for a in 0..dk {
            let row = &mut s[a * dv..(a + 1) * dv];
            let mut acc = T::ZERO;
            for ((sb, &vb), &gb) in row.iter_mut().zip(vt).zip(dot) {
                *sb += kt[a] * vb;
                acc += gb * *sb;
            }
            g.dq[t * dk + a] = acc;
        }
    }
    let gs = g.ds;
    for t in (0..d.t).rev() {
        let (qt, kt, vt, dot) = (&x.q[t * dk..(t + 1) * dk], &x.k[t * dk..(t + 1) * dk], &x.v[t * dv..(t + 1) * dv], &x.dout[t * dv..(t + 1) * dv]);
        let dvt = &mut g.dv[t * dv..(t + 1) * dv];
        for a in 0..dk {
            // G[a, :] += q_t[a] do_t; dk_t[a] = G[a, :] . v_t; dv_t += k_t[a] G[a, :]
            let row = &mut gs[a * dv..(a + 1) * dv];
            let mut acc = T::ZERO;
            for (((gb, &ob), &vb), dvb) in row.iter_mut().zip(dot).zip(vt).zip(dvt.iter_mut()) {
                *gb += qt[a] * ob;
                acc += *gb * vb;
                *dvb += kt[a] * *gb;
            }
            g.dk[t * dk + a] = acc;
        }
    }
}

/// One head, by chunks: a forward sweep stores the state S_i before each chunk, then a backward
/// sweep over chunks applies the formulas of the file header, with dS_{i+1} held in `g.ds`.
pub(super) fn head_backward_chunked<T: Real>(x: HeadInputs<T>, g: HeadGrads<T>, d: LinAttnDims) {
    let (dk, dv, sz) = (d.dk, d.dv, d.dk * d.dv);
    let chunks = d.t.div_ceil(CHUNK);
    // states[i] = S_i: (chunks, Dk, Dv)
    let mut states = vec![T::ZERO; chunks * sz];
    states[..sz].copy_from_slice(x.s0);
    for i in 0..chunks - 1 {
        let (c0, c1) = (i * CHUNK, (i + 1) * CHUNK);
        let (done, next) = states.split_at_mut((i + 1) * sz);
        next[..sz].copy_from_slice(&done[i * sz..]);
        T::gemm(&mut next[..sz], &x.k[c0 * dk..c1 * dk], &x.v[c0 * dv..c1 * dv], dk, CHUNK, dv, true, false, T::ONE, true, false);
    }
    let mut a = [T::ZERO; CHUNK * CHUNK]; // (Q K^T) . M
    let mut p = [T::ZERO; CHUNK * CHUNK]; // (dO V^T) . M
    let gs = g.ds; // dS_{i+1}
    for i in (0..chunks).rev() {
        let c0 = i * CHUNK;
        let n = CHUNK.min(d.t - c0);
        let (rk, rv) = (c0 * dk..(c0 + n) * dk, c0 * dv..(c0 + n) * dv);
        let (qc, kc, vc, doc) = (&x.q[rk.clone()], &x.k[rk.clone()], &x.v[rv.clone()], &x.dout[rv.clone()]);
        let (dqc, dkc, dvc) = (&mut g.dq[rk.clone()], &mut g.dk[rk], &mut g.dv[rv]);
        let si = &states[i * sz..(i + 1) * sz];
        let (a, p) = (&mut a[..n * n], &mut p[..n * n]);
        T::gemm(a, qc, kc, n, dk, n, false, true, T::ONE, false, false);
        mask_upper(a, n);
        T::gemm(p, doc, vc, n, dv, n, false, true, T::ONE, false, false);
        mask_upper(p, n);
        // dQ = dO S_i^T + P K: (n, Dv) x (Dv, Dk) + (n, n) x (n, Dk)
        T::gemm(dqc, doc, si, n, dv, dk, false, true, T::ONE, false, false);
        T::gemm(dqc, p, kc, n, n, dk, false, false, T::ONE, true, false);
        // dK = V dS^T + P^T Q: (n, Dv) x (Dv, Dk) + (n, n)^T x (n, Dk)
        T::gemm(dkc, vc, gs, n, dv, dk, false, true, T::ONE, false, false);
        T::gemm(dkc, p, qc, n, n, dk, true, false, T::ONE, true, false);
        // dV = K dS + A^T dO: (n, Dk) x (Dk, Dv) + (n, n)^T x (n, Dv)
        T::gemm(dvc, kc, gs, n, dk, dv, false, false, T::ONE, false, false);
        T::gemm(dvc, a, doc, n, n, dv, true, false, T::ONE, true, false);
        // dS_i = dS_{i+1} + Q^T dO: (Dk, n) x (n, Dv)
        T::gemm(gs, qc, doc, dk, n, dv, true, false, T::ONE, true, false);
    }
}
