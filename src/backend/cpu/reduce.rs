//! Reductions along one axis: sum, max, argmax; and topk along rows. The tensor is viewed as (outer, dim, inner) and
//! reduced over `dim`; the result is (outer, inner). Sums accumulate in f64 so that long rows
//! stay accurate in f32. Twin of kernels/reduce.cu.

use super::{CpuStorage, Real};
use crate::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Max,
}

pub fn reduce(op: ReduceOp, x: &CpuStorage, outer: usize, dim: usize, inner: usize) -> Result<CpuStorage> {
    crate::float_op!("reduce", (x), reduce_t(op, x, outer, dim, inner))
}

fn reduce_t<T: Real>(op: ReduceOp, x: &[T], outer: usize, dim: usize, inner: usize) -> Vec<T> {
    if dim == 0 || inner == 0 {
        return vec![T::ZERO; outer * inner]; // an empty sum (max over an empty axis is refused above)
    }
    let mut y = Vec::with_capacity(outer * inner);
    // One (dim, inner) slab per outer index; walk it row by row so the inner loop is contiguous.
    let mut acc = vec![0f64; inner];
    let mut best = vec![T::NEG_INF; inner];
    for slab in x.chunks(dim * inner) {
        match op {
            ReduceOp::Sum => {
                acc.fill(0.0);
                for row in slab.chunks(inner) {
                    acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v.to_f64());
                }
                y.extend(acc.iter().map(|&a| T::from_f64(a)));
            }
            ReduceOp::Max => {
                // NaN propagates: once seen it stays (NaN compares false both ways).
                best.fill(T::NEG_INF);
                for row in slab.chunks(inner) {
                    best.iter_mut().zip(row).for_each(|(m, &v)| if v > *m || v.is_nan() { *m = v });
                }
                y.extend_from_slice(&best);
            }
        }
    }
    y
}

/// Index of the largest element along the axis (the first one on ties), as U32.
pub fn argmax(x: &CpuStorage, outer: usize, dim: usize, inner: usize) -> Result<CpuStorage> {
    fn t<T: Real>(x: &[T], outer: usize, dim: usize, inner: usize) -> Vec<u32> {
        let mut y = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let (mut best, mut arg) = (T::NEG_INF, 0u32);
                for d in 0..dim {
                    let v = x[o * dim * inner + d * inner + i];
                    if v > best || (d == 0 && !(v < best)) {
                        best = v;
                        arg = d as u32;
                    }
                }
                y.push(arg);
            }
        }
        y
    }
    match x {
        CpuStorage::F32(x) => Ok(CpuStorage::U32(t(x, outer, dim, inner))),
        CpuStorage::F64(x) => Ok(CpuStorage::U32(t(x, outer, dim, inner))),
        other => Err(super::dtype_error("argmax", &[other.dtype()])),
    }
}

/// Most `k` topk may keep a row (the kernel's per-thread list; the same bound on every device).
pub const TOPK_MAX: usize = 64;

/// The `k` largest elements of each row of x (rows, n), best first: [values (rows, k) in x's
/// dtype, indices (rows, k) U32]. Order: the larger value first, the smaller index on ties. NaN
/// is never taken; a row with fewer than k other elements ends in empty slots (value NaN, index
/// u32::MAX). 1 <= k <= min(n, TOPK_MAX), checked one level up.
pub fn topk(x: &CpuStorage, rows: usize, n: usize, k: usize) -> Result<Vec<CpuStorage>> {
    fn t<T: Real>(x: &[T], n: usize, k: usize) -> (Vec<T>, Vec<u32>) {
        let (mut vals, mut idx) = (Vec::with_capacity(x.len() / n.max(1) * k), Vec::new());
        let mut cand: Vec<(T, u32)> = Vec::with_capacity(n);
        for row in x.chunks(n) {
            cand.clear();
            cand.extend(row.iter().enumerate().filter(|(_, v)| !v.is_nan()).map(|(i, &v)| (v, i as u32)));
            // Total order on non-NaN values: larger first, then smaller index.
            let better = |a: &(T, u32), b: &(T, u32)| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1));
            if cand.len() > k {
                cand.select_nth_unstable_by(k - 1, better);
                cand.truncate(k);
            }
            cand.sort_unstable_by(better);
            for j in 0..k {
                let (v, i) = cand.get(j).copied().unwrap_or((T::from_f64(f64::NAN), u32::MAX));
                vals.push(v);
                idx.push(i);
            }
        }
        (vals, idx)
    }
    super::expect_len("topk", "x", x.len(), rows * n)?;
    match x {
        CpuStorage::F32(x) => {
            let (v, i) = t(x, n, k);
            Ok(vec![CpuStorage::F32(v), CpuStorage::U32(i)])
        }
        CpuStorage::F64(x) => {
            let (v, i) = t(x, n, k);
            Ok(vec![CpuStorage::F64(v), CpuStorage::U32(i)])
        }
        other => Err(super::dtype_error("topk", &[other.dtype()])),
    }
}
