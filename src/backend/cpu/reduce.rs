//! Reductions along one axis: sum, max, argmax. The tensor is viewed as (outer, dim, inner) and
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
