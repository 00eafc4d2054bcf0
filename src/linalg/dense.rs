//! Small dense kernels on row-major f64 slices, backed by faer: least squares by Householder QR
//! and the matrix product. The rest of kiln passes plain slices; faer types stay inside linalg.
//!
//! Why QR and not the normal equations: the Levenberg-Marquardt subproblem of the scaling-law fit
//! has Jacobian columns that differ by many orders of magnitude (d/d alpha carries a factor
//! log N ~ 20, d/dA a factor N^-alpha ~ 1e-3); forming J'J would square that conditioning.
//! Source: Golub & Van Loan, "Matrix Computations", 5.3 (least squares via QR).

use crate::{Error, Result};
use faer::linalg::solvers::SolveLstsq;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// x = argmin |A x - b|_2. a: (M, N) row-major with M >= N, b: (M) -> x: (N).
/// Errors on mismatched lengths, M < N, non-finite input or a non-finite solution (rank-deficient A).
pub fn lstsq(a: &[f64], m: usize, n: usize, b: &[f64]) -> Result<Vec<f64>> {
    if a.len() != m * n || b.len() != m || m < n || n == 0 {
        return Err(Error::Msg(format!(
            "lstsq: need a (M x N) with M >= N > 0 and b (M); got a.len() = {}, M = {m}, N = {n}, b.len() = {}",
            a.len(),
            b.len()
        )));
    }
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return Err(Error::Msg("lstsq: input contains NaN or inf".into()));
    }
    let am = MatRef::from_row_major_slice(a, m, n);
    let bm = Mat::from_fn(m, 1, |i, _| b[i]);
    let x = am.qr().solve_lstsq(&bm);
    let x: Vec<f64> = (0..n).map(|i| x[(i, 0)]).collect();
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::Msg("lstsq: the matrix is rank deficient (solution not finite)".into()));
    }
    Ok(x)
}

/// c (M, N) = op(a) op(b), all row-major; op(a) is (M, K): a stored (M, K), or (K, M) when `ta`.
/// op(b) is (K, N): b stored (K, N), or (N, K) when `tb`. Lengths are the caller's contract
/// (checked with a debug assertion); multi-threaded above ~64^3 multiply-adds.
#[allow(clippy::too_many_arguments)]
pub fn gemm(c: &mut [f64], a: &[f64], b: &[f64], m: usize, k: usize, n: usize, ta: bool, tb: bool) {
    debug_assert!(c.len() == m * n && a.len() == m * k && b.len() == k * n);
    if m * n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0);
        return;
    }
    let av = if ta { MatRef::from_row_major_slice(a, k, m).transpose() } else { MatRef::from_row_major_slice(a, m, k) };
    let bv = if tb { MatRef::from_row_major_slice(b, n, k).transpose() } else { MatRef::from_row_major_slice(b, k, n) };
    let cv = MatMut::from_row_major_slice_mut(c, m, n);
    let par = if m * n * k >= 1 << 18 { Par::rayon(0) } else { Par::Seq };
    faer::linalg::matmul::matmul(cv, Accum::Replace, av, bv, 1.0, par);
}
