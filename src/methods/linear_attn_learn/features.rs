//! The convex view of multi-head linear attention (Yau et al., "Learning Linear Attention in
//! Polynomial Time"): the output is linear in a fixed cubic feature map, so ordinary least
//! squares learns it, and an SVD turns the learned coefficients back into heads.
//!
//! The model (all f64 here; the trainable f32 twin is model.rs). Tokens z_s in R^D, causal:
//!   y_t = (1/sqrt D) sum_h V_h S_t Q_h z_t,   S_t = sum_{s <= t} z_s z_s^T   (keys are the tokens)
//! Heads are SUMMED. Component i: `y_t[i] = sum_{a,b,c} W[(i,a),(b,c)] S_t[a,b] z_t[c]` with
//!   W = (1/sqrt D) sum_h vec(V_h) vec(Q_h)^T : (D^2, D^2), vec row-major (index i*D + a).
//! S_t is symmetric, so only `W[(i,a),(b,c)] + W[(i,b),(a,c)]` is seen: folding the pairs a <= b
//! leaves F = D^2 (D+1)/2 features `psi_t[(p(a,b), c)] = S_t[a,b] z_t[c]` and coefficients
//! beta: (F, D), y_t = beta^T psi_t. Unfolding splits each off-diagonal coefficient evenly
//! over (a,b) and (b,a). Head recovery: W = U diag(s) V^T, head k has
//! V_k = D^(1/4) sqrt(s_k) reshape(u_k), Q_k = D^(1/4) sqrt(s_k) reshape(v_k) (rank(W) heads).
//! Certificate: if the second moment E[psi psi^T] (F, F) is full rank, the least-squares
//! minimiser is unique, so every empirical-risk minimiser in the MHLA class computes the same
//! function; its smallest eigenvalue says how well the data pin that function down.

use super::tasks::Dataset;
use crate::linalg::{eigh, gemm, lstsq_min_norm, svd};
use crate::{rng, Error, Result};
use serde::Serialize;

/// Eigenvalues above RANK_RTOL x the largest count towards the certificate's rank.
pub const RANK_RTOL: f64 = 1e-9;
/// Singular values of the design at or below this x the largest are dropped by OLS.
pub const OLS_RTOL: f64 = 1e-10;

/// One head: v, q: (D, D) row-major.
#[derive(Clone, Debug, Serialize)]
pub struct Head {
    pub v: Vec<f64>,
    pub q: Vec<f64>,
}

/// A multi-head linear attention function (heads summed, 1/sqrt D scale), evaluated directly.
#[derive(Clone, Debug, Serialize)]
pub struct Mhla {
    pub d: usize,
    pub heads: Vec<Head>,
}

impl Mhla {
    /// `h` heads with N(0, 1/D) entries, from Philox streams of `seed`.
    pub fn random(d: usize, h: usize, seed: u64) -> Mhla {
        let std = 1.0 / (d as f32).sqrt();
        let draw = |stream: u32| rng::normal_vec(seed, stream, d * d, 0.0, std).into_iter().map(f64::from).collect();
        Mhla { d, heads: (0..h as u32).map(|k| Head { v: draw(2 * k), q: draw(2 * k + 1) }).collect() }
    }

    /// z: (N, T, D) -> y: (N, T, D), y_t = (1/sqrt D) sum_h V_h S_t Q_h z_t.
    pub fn apply(&self, z: &[f64], n: usize, t: usize) -> Vec<f64> {
        let d = self.d;
        let scale = 1.0 / (d as f64).sqrt();
        let mut y = vec![0.0; n * t * d];
        let (mut s, mut qz, mut sqz) = (vec![0.0; d * d], vec![0.0; d], vec![0.0; d]);
        for seq in 0..n {
            s.fill(0.0);
            for pos in 0..t {
                let row = (seq * t + pos) * d;
                let zt = &z[row..row + d];
                for a in 0..d {
                    for b in 0..d {
                        s[a * d + b] += zt[a] * zt[b];
                    }
                }
                for head in &self.heads {
                    matvec(&head.q, zt, &mut qz);
                    matvec(&s, &qz, &mut sqz);
                    for i in 0..d {
                        y[row + i] += scale * (0..d).map(|a| head.v[i * d + a] * sqz[a]).sum::<f64>();
                    }
                }
            }
        }
        y
    }

    /// W = (1/sqrt D) sum_h vec(V_h) vec(Q_h)^T: (D^2, D^2) row-major.
    pub fn w(&self) -> Vec<f64> {
        let d2 = self.d * self.d;
        let scale = 1.0 / (self.d as f64).sqrt();
        let mut w = vec![0.0; d2 * d2];
        for h in &self.heads {
            for r in 0..d2 {
                for c in 0..d2 {
                    w[r * d2 + c] += scale * h.v[r] * h.q[c];
                }
            }
        }
        w
    }
}

/// out = m v, m: (D, D) row-major.
fn matvec(m: &[f64], v: &[f64], out: &mut [f64]) {
    let d = v.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = (0..d).map(|j| m[i * d + j] * v[j]).sum();
    }
}

/// F = D^2 (D + 1) / 2 folded features.
pub fn n_features(d: usize) -> usize {
    d * d * (d + 1) / 2
}

/// The pairs a <= b in feature order (row-major upper triangle); feature (p, c) sits at p D + c.
pub fn pairs(d: usize) -> Vec<(usize, usize)> {
    (0..d).flat_map(|a| (a..d).map(move |b| (a, b))).collect()
}

/// Folded features of the supervised positions: (M, F) row-major, M = data.rows(), rows in
/// (sequence, position) order. `psi_t[(p(a,b), c)] = S_t[a,b] z_t[c]`, S_t including z_t.
pub fn psi(data: &Dataset) -> Vec<f64> {
    let (d, t) = (data.d, data.t);
    let (pr, f) = (pairs(d), n_features(d));
    let mut out = Vec::with_capacity(data.rows() * f);
    let mut s = vec![0.0; d * d];
    for seq in 0..data.n {
        s.fill(0.0);
        for pos in 0..t {
            let row = (seq * t + pos) * d;
            let zt = &data.z[row..row + d];
            for a in 0..d {
                for b in 0..d {
                    s[a * d + b] += zt[a] * zt[b];
                }
            }
            if data.mask[seq * t + pos] {
                for &(a, b) in &pr {
                    out.extend(zt.iter().map(|&zc| s[a * d + b] * zc));
                }
            }
        }
    }
    out
}

/// W (D^2, D^2) -> beta (F, D): beta[(p(a,b), c), i] = W[(i,a),(b,c)] + W[(i,b),(a,c)] for a < b,
/// W[(i,a),(a,c)] for a = b.
pub fn fold(w: &[f64], d: usize) -> Vec<f64> {
    let d2 = d * d;
    let mut beta = vec![0.0; n_features(d) * d];
    for (p, &(a, b)) in pairs(d).iter().enumerate() {
        for c in 0..d {
            for i in 0..d {
                let mut v = w[(i * d + a) * d2 + b * d + c];
                if a != b {
                    v += w[(i * d + b) * d2 + a * d + c];
                }
                beta[(p * d + c) * d + i] = v;
            }
        }
    }
    beta
}

/// beta (F, D) -> W (D^2, D^2), symmetric in (a, b): the inverse of `fold` on such W.
pub fn unfold(beta: &[f64], d: usize) -> Vec<f64> {
    let d2 = d * d;
    let mut w = vec![0.0; d2 * d2];
    for (p, &(a, b)) in pairs(d).iter().enumerate() {
        for c in 0..d {
            for i in 0..d {
                let v = beta[(p * d + c) * d + i];
                if a == b {
                    w[(i * d + a) * d2 + a * d + c] = v;
                } else {
                    w[(i * d + a) * d2 + b * d + c] = 0.5 * v;
                    w[(i * d + b) * d2 + a * d + c] = 0.5 * v;
                }
            }
        }
    }
    w
}

/// rows (M, F) x beta (F, D) -> (M, D).
pub fn predict(rows: &[f64], beta: &[f64], d: usize) -> Vec<f64> {
    let f = n_features(d);
    let m = rows.len() / f;
    let mut y = vec![0.0; m * d];
    gemm(&mut y, rows, beta, m, f, d, false, false);
    y
}

/// An OLS fit: beta (F, D) and the design's singular-value range and rank.
#[derive(Clone, Debug, Serialize)]
pub struct OlsFit {
    pub d: usize,
    #[serde(skip)]
    pub beta: Vec<f64>,
    pub rows: usize,
    pub features: usize,
    pub rank: usize,
}

/// Minimum-norm least squares of the supervised targets on the folded features.
pub fn ols(data: &Dataset) -> Result<OlsFit> {
    let (d, f, m) = (data.d, n_features(data.d), data.rows());
    if m == 0 {
        return Err(Error::Msg("linear-attn-learn OLS: the data set has no supervised positions".into()));
    }
    let rows = psi(data);
    let (beta, svd) = lstsq_min_norm(&rows, m, f, &data.targets(), d, OLS_RTOL)?;
    Ok(OlsFit { d, beta, rows: m, features: f, rank: svd.rank(OLS_RTOL) })
}

/// Heads from W (D^2, D^2) by SVD: one per singular value above `rtol` x the largest.
pub fn recover_heads(w: &[f64], d: usize, rtol: f64) -> Result<Mhla> {
    let d2 = d * d;
    let f = svd(w, d2, d2)?;
    let k = f.k;
    let c = (d as f64).powf(0.25);
    let heads = (0..f.rank(rtol))
        .map(|j| {
            let g = c * f.s[j].sqrt();
            Head { v: (0..d2).map(|r| g * f.u[r * k + j]).collect(), q: (0..d2).map(|col| g * f.vt[j * d2 + col]).collect() }
        })
        .collect();
    Ok(Mhla { d, heads })
}

/// The identifiability certificate of a data set: rank and spectrum of (1/M) Psi^T Psi.
#[derive(Clone, Debug, Serialize)]
pub struct Certificate {
    pub features: usize,
    pub rank: usize,
    pub full_rank: bool,
    pub lambda_min: f64,
    pub lambda_max: f64,
}

pub fn certificate(data: &Dataset) -> Result<Certificate> {
    let (f, m) = (n_features(data.d), data.rows());
    if m == 0 {
        return Err(Error::Msg("linear-attn-learn certificate: the data set has no supervised positions".into()));
    }
    let rows = psi(data);
    let mut sigma = vec![0.0; f * f];
    gemm(&mut sigma, &rows, &rows, f, m, f, true, false);
    sigma.iter_mut().for_each(|v| *v /= m as f64);
    let (values, _) = eigh(&sigma, f)?;
    let lambda_max = values.last().copied().unwrap_or(0.0);
    let rank = values.iter().filter(|&&l| l > RANK_RTOL * lambda_max).count();
    Ok(Certificate { features: f, rank, full_rank: rank == f, lambda_min: values[0], lambda_max })
}

/// Variance of the entries of target: (M, D), each column's mean removed.
pub fn variance(target: &[f64], d: usize) -> f64 {
    let m = target.len() / d.max(1);
    let mut var = 0.0;
    for i in 0..d {
        let mean = (0..m).map(|r| target[r * d + i]).sum::<f64>() / m.max(1) as f64;
        var += (0..m).map(|r| (target[r * d + i] - mean).powi(2)).sum::<f64>();
    }
    var / target.len().max(1) as f64
}

/// Mean squared error over all entries / variance(target). pred, target: (M, D).
pub fn mse_rel(pred: &[f64], target: &[f64], d: usize) -> f64 {
    if target.is_empty() || pred.len() != target.len() {
        return f64::NAN;
    }
    let mse = pred.iter().zip(target).map(|(p, y)| (p - y).powi(2)).sum::<f64>() / target.len() as f64;
    mse / variance(target, d)
}
