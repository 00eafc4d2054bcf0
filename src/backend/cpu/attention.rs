//! Causal softmax attention with grouped-query heads (GQA, Ainslie et al. 2023), forward and
//! backward. Twin of kernels/attention.cu.
//!
//! q: (B, Hq, Tq, D), k, v: (B, Hkv, Tk, D), Hq = G * Hkv: query head h reads kv head h / G.
//! Query i sits at absolute position p_i = Tk - Tq + i (Tq < Tk: decoding with a KV cache) and
//! sees keys 0..=p_i. With s = scale (usually 1/sqrt(D)):
//!   S = s Q K^T (masked),  P = softmax_rows(S),  O = P V
//! Backward (P recomputed from Q, K rather than stored; Vaswani et al. 2017, FlashAttention's
//! recompute idea without its tiling of keys):
//!   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = s dS K,  dK = s dS^T Q
//! dK and dV of a kv head are the sums over its G query heads, added in head order.
//!
//! Work split: the forward runs one rayon task per (b, query head); the backward one task per
//! (b, kv head), which owns that group's dQ rows and its dK, dV (no atomics, deterministic).
//! Inside a task, queries go in blocks of QB rows; a block only multiplies against the keys its
//! last row can see, so the causal half of the products is skipped. Products use T::gemm.

use super::{lane_max, lane_sum, CpuStorage, Real};
use crate::backend::AttnDims;
use crate::tensor::Shape;
use crate::{Error, Result};
use rayon::prelude::*;

/// Query rows per block: bounds the score buffer to QB x Tk per task.
const QB: usize = 64;

/// Refuse inconsistent dimensions or buffer lengths rather than index out of bounds.
fn check(op: &'static str, dm: &AttnDims, lens: &[(&str, usize, usize)]) -> Result<()> {
    let q = Shape(vec![dm.b, dm.hq, dm.tq, dm.d]);
    if dm.hkv == 0 || dm.hq % dm.hkv != 0 {
        return Err(Error::bad_shape(op, &q, format!("Hq = {} must be a multiple of Hkv = {}", dm.hq, dm.hkv)));
    }
    if dm.tq > dm.tk {
        return Err(Error::bad_shape(op, &q, format!("Tq = {} exceeds Tk = {}", dm.tq, dm.tk)));
    }
    for &(what, got, want) in lens {
        if got != want {
            return Err(Error::bad_shape(op, &q, format!("{what} holds {got} elements, expected {want}")));
        }
    }
    Ok(())
}

/// -> o (B, Hq, Tq, D)
pub fn attention(q: &CpuStorage, k: &CpuStorage, v: &CpuStorage, dm: AttnDims) -> Result<CpuStorage> {
    let (nq, nk) = (dm.b * dm.hq * dm.tq * dm.d, dm.b * dm.hkv * dm.tk * dm.d);
    check("attention", &dm, &[("q", q.len(), nq), ("k", k.len(), nk), ("v", v.len(), nk)])?;
    crate::float_op!("attention", (q, k, v), attention_t(q, k, v, dm))
}

/// -> [dq (B, Hq, Tq, D), dk (B, Hkv, Tk, D), dv (B, Hkv, Tk, D)]
pub fn attention_backward(q: &CpuStorage, k: &CpuStorage, v: &CpuStorage, dout: &CpuStorage, dm: AttnDims) -> Result<Vec<CpuStorage>> {
    let (nq, nk) = (dm.b * dm.hq * dm.tq * dm.d, dm.b * dm.hkv * dm.tk * dm.d);
    let lens = [("q", q.len(), nq), ("k", k.len(), nk), ("v", v.len(), nk), ("dout", dout.len(), nq)];
    check("attention_backward", &dm, &lens)?;
    crate::float_op_multi!("attention_backward", (q, k, v, dout), attention_backward_t(q, k, v, dout, dm))
}

/// P = causal softmax of the block's scores S (rows, kmax), in place. Row r of the block sees
/// keys 0..=first + r (first = position of the block's first query); later keys get 0.
fn causal_softmax<T: Real>(s: &mut [T], kmax: usize, first: usize) {
    for (r, row) in s.chunks_mut(kmax).enumerate() {
        let (seen, hidden) = row.split_at_mut(first + r + 1);
        let m = lane_max(seen);
        seen.iter_mut().for_each(|x| *x = (*x - m).exp()); // its own loop: vectorises
        let sum = lane_sum(seen, seen, seen, |x, _, _| x.to_f64());
        let inv = T::from_f64(1.0 / sum);
        seen.iter_mut().for_each(|x| *x *= inv);
        hidden.fill(T::ZERO);
    }
}

/// The query blocks of one head: (first row i0, rows, kmax = keys seen by the block's last row).
fn blocks(tq: usize, tk: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..tq).step_by(QB).map(move |i0| {
        let rows = QB.min(tq - i0);
        (i0, rows, tk - tq + i0 + rows)
    })
}

fn attention_t<T: Real>(q: &[T], k: &[T], v: &[T], dm: AttnDims) -> Vec<T> {
    let AttnDims { b, hq, hkv, tq, tk, d, scale } = dm;
    let mut o = vec![T::ZERO; b * hq * tq * d];
    if o.is_empty() {
        return o;
    }
    let group = hq / hkv;
    let scale = T::from_f64(scale);
    // Few heads to spread: let each product use the threads instead.
    let inner_par = b * hq < rayon::current_num_threads();
    // one task per (b, query head): its (Tq, D) output
    o.par_chunks_mut(tq * d).enumerate().for_each(|(bh, oh)| {
        let kv = (bh / hq * hkv + bh % hq / group) * tk * d;
        let (kh, vh) = (&k[kv..kv + tk * d], &v[kv..kv + tk * d]);
        let qh = &q[bh * tq * d..(bh + 1) * tq * d];
        let mut p = vec![T::ZERO; QB.min(tq) * tk];
        for (i0, rows, kmax) in blocks(tq, tk) {
            let pb = &mut p[..rows * kmax];
            let qb = &qh[i0 * d..(i0 + rows) * d];
            // S = s Q K^T: (rows, D) x (kmax, D)^T -> (rows, kmax)
            T::gemm(pb, qb, &kh[..kmax * d], rows, d, kmax, false, true, scale, false, inner_par);
            causal_softmax(pb, kmax, tk - tq + i0);
            // O = P V: (rows, kmax) x (kmax, D) -> (rows, D)
            T::gemm(&mut oh[i0 * d..(i0 + rows) * d], pb, &vh[..kmax * d], rows, kmax, d, false, false, T::ONE, false, inner_par);
        }
    });
    o
}

fn attention_backward_t<T: Real>(q: &[T], k: &[T], v: &[T], dout: &[T], dm: AttnDims) -> Vec<Vec<T>> {
    let AttnDims { b, hq, hkv, tq, tk, d, scale } = dm;
    let (mut dq, mut dk, mut dv) = (vec![T::ZERO; q.len()], vec![T::ZERO; k.len()], vec![T::ZERO; v.len()]);
    if tq * d == 0 || b * hq == 0 {
        return vec![dq, dk, dv];
    }
    let group = hq / hkv;
    let scale = T::from_f64(scale);
    let inner_par = b * hkv < rayon::current_num_threads();
    // One task per (b, kv head) = g. Its query heads g * G .. (g + 1) * G are contiguous in q,
    // so the task owns one slab of dq (G, Tq, D) and one (Tk, D) of dk and of dv.
    let slabs = dq.par_chunks_mut(group * tq * d).zip(dk.par_chunks_mut(tk * d)).zip(dv.par_chunks_mut(tk * d));
    slabs.enumerate().for_each(|(g, ((dqg, dkh), dvh))| {
        let (kh, vh) = (&k[g * tk * d..(g + 1) * tk * d], &v[g * tk * d..(g + 1) * tk * d]);
        let (mut p, mut ds) = (vec![T::ZERO; QB.min(tq) * tk], vec![T::ZERO; QB.min(tq) * tk]);
        for j in 0..group {
            let bh = g * group + j;
            let qh = &q[bh * tq * d..(bh + 1) * tq * d];
            let doh = &dout[bh * tq * d..(bh + 1) * tq * d];
            let dqh = &mut dqg[j * tq * d..(j + 1) * tq * d];
            for (i0, rows, kmax) in blocks(tq, tk) {
                let (pb, dsb) = (&mut p[..rows * kmax], &mut ds[..rows * kmax]);
                let (qb, dob) = (&qh[i0 * d..(i0 + rows) * d], &doh[i0 * d..(i0 + rows) * d]);
                // recompute P (rows, kmax)
                T::gemm(pb, qb, &kh[..kmax * d], rows, d, kmax, false, true, scale, false, inner_par);
                causal_softmax(pb, kmax, tk - tq + i0);
                // dP = dO V^T: (rows, D) x (kmax, D)^T -> (rows, kmax)
                T::gemm(dsb, dob, &vh[..kmax * d], rows, d, kmax, false, true, T::ONE, false, inner_par);
                // dS = P * (dP - rowsum(dP * P)), in place over dP (hidden keys: P = 0 so dS = 0)
                for (pr, dr) in pb.chunks(kmax).zip(dsb.chunks_mut(kmax)) {
                    let dot = T::from_f64(lane_sum(pr, dr, pr, |a, c, _| (a * c).to_f64()));
                    for (dsj, &pj) in dr.iter_mut().zip(pr) {
                        *dsj = pj * (*dsj - dot);
                    }
                }
                // dV[:kmax] += P^T dO: (rows, kmax)^T x (rows, D) -> (kmax, D)
                T::gemm(&mut dvh[..kmax * d], pb, dob, kmax, rows, d, true, false, T::ONE, true, inner_par);
                // dQ = s dS K: (rows, kmax) x (kmax, D) -> (rows, D)
                T::gemm(&mut dqh[i0 * d..(i0 + rows) * d], dsb, &kh[..kmax * d], rows, kmax, d, false, false, scale, false, inner_par);
                // dK[:kmax] += s dS^T Q: (rows, kmax)^T x (rows, D) -> (kmax, D)
                T::gemm(&mut dkh[..kmax * d], dsb, qb, kmax, rows, d, true, false, scale, true, inner_par);
            }
        }
    });
    vec![dq, dk, dv]
}
