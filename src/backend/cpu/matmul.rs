//! Batched matrix product with optional transposes: `C[b] = op(A[b]) op(B[b])`.
//! The inner product is faer's GEMM (the one place outside src/linalg where faer appears: the
//! engine's matmul must be fast, and faer's packed AVX-512/AVX2 kernels are what make it so).
//! Row-major buffers are handed to faer as strided views; a transpose is a free view change.

use super::{CpuStorage, Real};
use crate::Result;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// c (m x n) = alpha * op(a) op(b) [+ c], all row-major. op(a) is (m x k): a is stored (m x k), or
/// (k x m) when `ta`. op(b) is (k x n): b is stored (k x n), or (n x k) when `tb`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_faer<T: Real + faer::traits::ComplexField>(
    c: &mut [T], a: &[T], b: &[T], m: usize, k: usize, n: usize,
    ta: bool, tb: bool, alpha: T, accumulate: bool, parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::ZERO);
        }
        return;
    }
    let av = if ta { MatRef::from_row_major_slice(a, k, m).transpose() } else { MatRef::from_row_major_slice(a, m, k) };
    let bv = if tb { MatRef::from_row_major_slice(b, n, k).transpose() } else { MatRef::from_row_major_slice(b, k, n) };
    let beta = if accumulate { Accum::Add } else { Accum::Replace };
    // Threads take blocks of C, each one sequential product: rayon's join instead of faer's
    // spinning barriers, which cost more than they saved at training-step sizes (and spin hard
    // when the machine is shared). Below ~64^3 FMAs threads cost more than they save.
    let pieces = if parallel && m * n * k >= 1 << 18 { rayon::current_num_threads() } else { 1 };
    gemm_split(MatMut::from_row_major_slice_mut(c, m, n), beta, av, bv, alpha, pieces);
}

/// C = alpha A B (+ C) in `pieces` blocks: C is halved along its longer side (16-aligned, so
/// faer's micro-tiles stay whole), recursively, and the halves run under rayon::join. Splitting
/// the longer side keeps each thread's packed copy of the shared operand small (x^T dY, a weight
/// gradient, is 128 rows by 512 columns).
fn gemm_split<T: Real + faer::traits::ComplexField>(c: MatMut<'_, T>, beta: Accum, a: MatRef<'_, T>, b: MatRef<'_, T>, alpha: T, pieces: usize) {
    let (m, n) = (c.nrows(), c.ncols());
    let half = pieces / 2;
    if pieces <= 1 || m.max(n) < 32 {
        faer::linalg::matmul::matmul(c, beta, a, b, alpha, Par::Seq);
        return;
    }
    if m >= n {
        let mid = (m * half / pieces).next_multiple_of(16).min(m);
        let (c1, c2) = c.split_at_row_mut(mid);
        let (a1, a2) = (a.subrows(0, mid), a.subrows(mid, m - mid));
        rayon::join(|| gemm_split(c1, beta, a1, b, alpha, half), || gemm_split(c2, beta, a2, b, alpha, pieces - half));
    } else {
        let mid = (n * half / pieces).next_multiple_of(16).min(n);
        let (c1, c2) = c.split_at_col_mut(mid);
        let (b1, b2) = (b.subcols(0, mid), b.subcols(mid, n - mid));
        rayon::join(|| gemm_split(c1, beta, a, b1, alpha, half), || gemm_split(c2, beta, a, b2, alpha, pieces - half));
    }
}

/// Batched matmul: a is (batch, M, K) (or (batch, K, M) if ta), b likewise (N, K) when tb.
/// `b_batch` is 1 when b is shared by every batch entry (a weight matrix).
#[allow(clippy::too_many_arguments)]
pub fn matmul(a: &CpuStorage, b: &CpuStorage, batch: usize, b_batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Result<CpuStorage> {
    crate::float_op!("matmul", (a, b), matmul_t(a, b, batch, b_batch, m, k, n, ta, tb))
}

#[allow(clippy::too_many_arguments)]
pub fn matmul_t<T: Real>(a: &[T], b: &[T], batch: usize, b_batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<T> {
    let mut c = vec![T::ZERO; batch * m * n];
    if m * n == 0 {
        return c;
    }
    let one_batch = |(i, ci): (usize, &mut [T])| {
        let ai = &a[i * m * k..(i + 1) * m * k];
        let bi = if b_batch == 1 { &b[..k * n] } else { &b[i * k * n..(i + 1) * k * n] };
        // Parallelise inside the product only when there are few batch entries to spread.
        T::gemm(ci, ai, bi, m, k, n, ta, tb, T::ONE, false, batch < rayon::current_num_threads());
    };
    if batch > 1 {
        c.par_chunks_mut(m * n).enumerate().for_each(one_batch);
    } else {
        one_batch((0, &mut c[..]));
    }
    c
}
