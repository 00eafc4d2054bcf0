//! Thin singular value decomposition and symmetric eigen-decomposition on row-major slices, by
//! faer (its divide-and-conquer bidiagonal SVD, multi-threaded through faer's global rayon pool).
//!
//!   a (M, N) = U (M, K) diag(s) (K) V^T (K, N),   K = min(M, N),   s non-increasing, >= 0.
//!
//! Also the minimum-norm least-squares solution through the SVD (the pseudo-inverse), which serves
//! rank-deficient designs where QR (dense::lstsq) fails: x = V diag(1/s) U^T b over the singular
//! values kept (Golub & Van Loan, "Matrix Computations", 5.5).
//!
//! f32 and f64 share one implementation (a macro over the two scalar types): the intruder analysis
//! works on f32 weights at the speed of an f32 LAPACK (workload e1 of ../shared/baselines), fits and
//! certificates use f64.

use crate::{Error, Result};
use faer::{MatRef, Side};

/// The thin SVD of a row-major (M, N) matrix; all factors row-major.
#[derive(Clone, Debug)]
pub struct Svd<T> {
    pub m: usize,
    pub n: usize,
    /// min(M, N)
    pub k: usize,
    /// (M, K): column j is the j-th left singular vector.
    pub u: Vec<T>,
    /// (K), non-increasing.
    pub s: Vec<T>,
    /// (K, N): row j is the j-th right singular vector.
    pub vt: Vec<T>,
}

impl<T: Copy + Into<f64>> Svd<T> {
    /// The j-th left singular vector, (M).
    pub fn u_col(&self, j: usize) -> Vec<T> {
        (0..self.m).map(|i| self.u[i * self.k + j]).collect()
    }
    /// Number of singular values above `rtol` times the largest.
    pub fn rank(&self, rtol: f64) -> usize {
        let top = self.s.first().map(|v| (*v).into()).unwrap_or(0.0);
        self.s.iter().map(|v| (*v).into()).filter(|&v: &f64| v > rtol * top && v > 0.0).count()
    }
}

fn check(op: &str, len: usize, m: usize, n: usize, finite: bool) -> Result<()> {
    if len != m * n || m == 0 || n == 0 {
        return Err(Error::Msg(format!("{op}: need a non-empty (M x N) matrix with M * N values; got {len} values for M = {m}, N = {n}")));
    }
    if !finite {
        return Err(Error::Msg(format!("{op}: the ({m} x {n}) matrix contains NaN or inf")));
    }
    Ok(())
}

macro_rules! impl_real {
    ($svd:ident, $eigh:ident, $t:ty) => {
        /// Thin SVD of a (M, N) row-major matrix (see the module docs). Errors on a shape that does
        /// not match, non-finite values, or (never seen in practice) no convergence.
        pub fn $svd(a: &[$t], m: usize, n: usize) -> Result<Svd<$t>> {
            check(stringify!($svd), a.len(), m, n, a.iter().all(|v| v.is_finite()))?;
            let k = m.min(n);
            let f = MatRef::from_row_major_slice(a, m, n)
                .thin_svd()
                .map_err(|e| Error::Msg(format!("{}: ({m} x {n}): {e:?}", stringify!($svd))))?;
            let (u, v, s) = (f.U(), f.V(), f.S().column_vector());
            Ok(Svd {
                m,
                n,
                k,
                u: (0..m * k).map(|i| u[(i / k, i % k)]).collect(),
                s: (0..k).map(|j| s[j]).collect(),
                vt: (0..k * n).map(|i| v[(i % n, i / n)]).collect(),
            })
        }

        /// Eigen-decomposition of a symmetric (N, N) row-major matrix (its lower triangle is read):
        /// eigenvalues non-decreasing (N) and eigenvectors as the columns of a (N, N) row-major matrix.
        pub fn $eigh(a: &[$t], n: usize) -> Result<(Vec<$t>, Vec<$t>)> {
            check(stringify!($eigh), a.len(), n, n, a.iter().all(|v| v.is_finite()))?;
            let f = MatRef::from_row_major_slice(a, n, n)
                .self_adjoint_eigen(Side::Lower)
                .map_err(|e| Error::Msg(format!("{}: ({n} x {n}): {e:?}", stringify!($eigh))))?;
            let (vals, vecs) = (f.S().column_vector(), f.U());
            Ok(((0..n).map(|j| vals[j]).collect(), (0..n * n).map(|i| vecs[(i / n, i % n)]).collect()))
        }
    };
}

impl_real!(svd, eigh, f64);
impl_real!(svd_f32, eigh_f32, f32);

/// Minimum-norm least squares for K right-hand sides at once: x = argmin |A x - B|_F with the
/// smallest |x|_F. a: (M, N), b: (M, K) -> (x (N, K), the SVD of a). Singular values at or below
/// `rtol` times the largest are treated as zero (numpy's rcond).
pub fn lstsq_min_norm(a: &[f64], m: usize, n: usize, b: &[f64], k: usize, rtol: f64) -> Result<(Vec<f64>, Svd<f64>)> {
    if b.len() != m * k || k == 0 {
        return Err(Error::Msg(format!("lstsq_min_norm: b must be (M x K) = ({m} x {k}), got {} values", b.len())));
    }
    let f = svd(a, m, n)?;
    let (r, top) = (f.k, f.s.first().copied().unwrap_or(0.0));
    // c = U^T b: (r, K), scaled by 1/s_j where s_j is kept.
    let mut c = vec![0.0; r * k];
    for i in 0..m {
        for j in 0..r {
            let uij = f.u[i * r + j];
            for col in 0..k {
                c[j * k + col] += uij * b[i * k + col];
            }
        }
    }
    let mut x = vec![0.0; n * k];
    for j in 0..r {
        if !(f.s[j] > rtol * top && f.s[j] > 0.0) {
            continue;
        }
        for row in 0..n {
            let v = f.vt[j * n + row] / f.s[j];
            for col in 0..k {
                x[row * k + col] += v * c[j * k + col];
            }
        }
    }
    Ok((x, f))
}
