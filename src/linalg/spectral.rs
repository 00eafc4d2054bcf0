//! Spectral decompositions on row-major f64 slices, backed by faer: the thin SVD, the symmetric
//! eigendecomposition, and the minimum-norm least-squares solution through the SVD (the
//! pseudo-inverse), which also serves rank-deficient designs where QR (dense::lstsq) fails.
//!
//! Why: identifiability certificates and head recovery (methods/linear_attn_learn) need ranks,
//! smallest eigenvalues and singular vectors; a rank-deficient design still has a unique
//! minimum-norm least-squares solution, x = V diag(1/s) U^T b over the singular values kept.
//! Source: Golub & Van Loan, "Matrix Computations", 5.5 (rank-deficient least squares).

use crate::{Error, Result};
use faer::{MatRef, Side};

/// a = U diag(s) V^T with u: (M, K), s: (K) non-increasing, vt: (K, N), K = min(M, N); row-major.
#[derive(Clone, Debug)]
pub struct Svd {
    pub m: usize,
    pub n: usize,
    pub u: Vec<f64>,
    pub s: Vec<f64>,
    pub vt: Vec<f64>,
}

impl Svd {
    pub fn k(&self) -> usize {
        self.s.len()
    }
    /// Number of singular values above `rtol` times the largest.
    pub fn rank(&self, rtol: f64) -> usize {
        let top = self.s.first().copied().unwrap_or(0.0);
        self.s.iter().filter(|&&v| v > rtol * top && v > 0.0).count()
    }
}

fn check(what: &str, a: &[f64], m: usize, n: usize) -> Result<()> {
    if a.len() != m * n || m == 0 || n == 0 {
        return Err(Error::Msg(format!("{what}: need an (M x N) matrix with M, N > 0; got a.len() = {}, M = {m}, N = {n}", a.len())));
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(Error::Msg(format!("{what}: input contains NaN or inf")));
    }
    Ok(())
}

/// Thin SVD of a: (M, N) row-major.
pub fn svd(a: &[f64], m: usize, n: usize) -> Result<Svd> {
    check("svd", a, m, n)?;
    let am = MatRef::from_row_major_slice(a, m, n);
    let f = am.thin_svd().map_err(|e| Error::Msg(format!("svd: did not converge ({e:?})")))?;
    let k = m.min(n);
    let (u, v, s) = (f.U(), f.V(), f.S().column_vector());
    let mut out = Svd { m, n, u: vec![0.0; m * k], s: (0..k).map(|i| s[i]).collect(), vt: vec![0.0; k * n] };
    for i in 0..m {
        for j in 0..k {
            out.u[i * k + j] = u[(i, j)];
        }
    }
    for j in 0..k {
        for c in 0..n {
            out.vt[j * n + c] = v[(c, j)];
        }
    }
    Ok(out)
}

/// Eigenvalues (non-decreasing) and eigenvectors (row-major (N, N), column j = vector j) of the
/// symmetric a: (N, N); only the lower triangle is read.
pub fn eigh(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    check("eigh", a, n, n)?;
    let am = MatRef::from_row_major_slice(a, n, n);
    let f = am.self_adjoint_eigen(Side::Lower).map_err(|e| Error::Msg(format!("eigh: did not converge ({e:?})")))?;
    let (u, s) = (f.U(), f.S().column_vector());
    let values = (0..n).map(|i| s[i]).collect();
    let mut vectors = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            vectors[i * n + j] = u[(i, j)];
        }
    }
    Ok((values, vectors))
}

/// Minimum-norm least squares for K right-hand sides at once: x = argmin |A x - B|_F with the
/// smallest |x|_F. a: (M, N), b: (M, K) -> (x (N, K), the SVD of a). Singular values at or below
/// `rtol` times the largest are treated as zero (numpy's rcond).
pub fn lstsq_min_norm(a: &[f64], m: usize, n: usize, b: &[f64], k: usize, rtol: f64) -> Result<(Vec<f64>, Svd)> {
    if b.len() != m * k || k == 0 {
        return Err(Error::Msg(format!("lstsq_min_norm: b must be (M x K) = ({m} x {k}), got {} values", b.len())));
    }
    let f = svd(a, m, n)?;
    let (r, top) = (f.k(), f.s.first().copied().unwrap_or(0.0));
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
