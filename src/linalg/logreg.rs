//! Multinomial logistic regression with an L2 penalty, fitted by L-BFGS: the linear probe that
//! later methods train on hidden states (is a property linearly decodable from layer l?).
//!
//! Objective (scikit-learn's `LogisticRegression(solver="lbfgs")`, same scaling, so the same C
//! means the same model):
//!   f(W, b) = (1/N) sum_i [logsumexp_k(z_ik) - z_i,y_i] + |W|^2 / (2 C N),   z = X W + b
//!   df/dW   = X' (P - Y) / N + W / (C N),   df/db = colsum(P - Y) / N,   P = softmax(z) row-wise
//! The intercept b is not penalised. Stopping: max |gradient| <= tol (1e-4, sklearn's default).
//! Source: Bishop, "Pattern Recognition and Machine Learning", 4.3.4 (softmax regression).
//! Shapes: x (N, F) row-major, y (N) class ids < K, W (F, K), b (K).

use super::dense::gemm;
use super::lbfgs::{minimize, LbfgsOptions};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct LogRegOptions {
    /// Inverse regularisation strength (sklearn's C); larger = weaker penalty.
    pub c: f64,
    pub max_iter: usize,
    /// Gradient tolerance on the (1/N-scaled) objective.
    pub tol: f64,
    pub fit_intercept: bool,
}

impl Default for LogRegOptions {
    /// scikit-learn's defaults: C = 1, max_iter = 100, tol = 1e-4, with an intercept.
    fn default() -> Self {
        LogRegOptions { c: 1.0, max_iter: 100, tol: 1e-4, fit_intercept: true }
    }
}

/// A fitted probe.
#[derive(Clone, Debug)]
pub struct LogReg {
    pub n_features: usize,
    pub n_classes: usize,
    /// (F, K) row-major.
    pub weights: Vec<f64>,
    /// (K); zeros when fitted without an intercept.
    pub bias: Vec<f64>,
    /// Final objective value and L-BFGS iterations used.
    pub objective: f64,
    pub iterations: usize,
    pub converged: bool,
}

fn check_x(x: &[f64], n: usize, f: usize) -> Result<()> {
    if x.len() != n * f || n == 0 || f == 0 {
        return Err(Error::Msg(format!("logreg: x must be (N, F) = ({n}, {f}) with N, F > 0; got {} values", x.len())));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::Msg(format!("logreg: x[{}, {}] is not finite", i / f, i % f)));
    }
    Ok(())
}

/// Row-wise log-softmax loss and its gradient wrt the logits, in place: z (N, K) holds logits on
/// entry and (P - Y) / N on exit. Returns the mean cross-entropy.
fn softmax_xent(z: &mut [f64], y: &[usize], k: usize) -> f64 {
    let n = y.len();
    let mut loss = 0.0;
    for (row, &yi) in z.chunks_mut(k).zip(y) {
        let max = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v));
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        let lse = max + sum.ln();
        loss += lse - row[yi];
        for v in row.iter_mut() {
            *v = (*v - lse).exp() / n as f64;
        }
        row[yi] -= 1.0 / n as f64;
    }
    loss / n as f64
}

impl LogReg {
    /// Fit on x (N, F) and labels y (N) in 0..K.
    pub fn fit(x: &[f64], n: usize, f: usize, y: &[usize], k: usize, opts: &LogRegOptions) -> Result<LogReg> {
        check_x(x, n, f)?;
        if y.len() != n || k < 2 {
            return Err(Error::Msg(format!("logreg: need N = {n} labels and K >= 2 classes (got {} labels, K = {k})", y.len())));
        }
        if let Some(i) = y.iter().position(|&c| c >= k) {
            return Err(Error::range("logreg", format!("label y[{i}] = {} is not < K = {k}", y[i])));
        }
        if !(opts.c > 0.0) {
            return Err(Error::Msg(format!("logreg: C must be > 0 (got {})", opts.c)));
        }
        let nw = f * k;
        let penalty = 1.0 / (opts.c * n as f64);
        let mut z = vec![0.0; n * k];
        let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
            let (w, b) = theta.split_at(nw);
            gemm(&mut z, x, w, n, f, k, false, false); // z = X W: (N, K)
            if opts.fit_intercept {
                z.chunks_mut(k).for_each(|row| row.iter_mut().zip(b).for_each(|(v, bk)| *v += bk));
            }
            let loss = softmax_xent(&mut z, y, k); // z <- (P - Y) / N
            let (gw, gb) = grad.split_at_mut(nw);
            gemm(gw, x, &z, f, n, k, true, false); // X' (P - Y) / N: (F, K)
            let mut w2 = 0.0;
            for (g, wv) in gw.iter_mut().zip(w) {
                *g += penalty * wv;
                w2 += wv * wv;
            }
            gb.fill(0.0);
            if opts.fit_intercept {
                z.chunks(k).for_each(|row| gb.iter_mut().zip(row).for_each(|(g, v)| *g += v));
            }
            loss + 0.5 * penalty * w2
        };
        let lopts = LbfgsOptions { max_iter: opts.max_iter, gtol: opts.tol, ftol: 64.0 * f64::EPSILON, ..Default::default() };
        let min = minimize(objective, &vec![0.0; nw + k], &lopts)?;
        let converged = min.converged();
        let (w, b) = min.x.split_at(nw);
        Ok(LogReg {
            n_features: f,
            n_classes: k,
            weights: w.to_vec(),
            bias: b.to_vec(),
            objective: min.f,
            iterations: min.iterations,
            converged,
        })
    }

    /// Logits x W + b: (N, K).
    pub fn logits(&self, x: &[f64], n: usize) -> Result<Vec<f64>> {
        check_x(x, n, self.n_features)?;
        let k = self.n_classes;
        let mut z = vec![0.0; n * k];
        gemm(&mut z, x, &self.weights, n, self.n_features, k, false, false);
        z.chunks_mut(k).for_each(|row| row.iter_mut().zip(&self.bias).for_each(|(v, bk)| *v += bk));
        Ok(z)
    }

    /// Most likely class per row: (N).
    pub fn predict(&self, x: &[f64], n: usize) -> Result<Vec<usize>> {
        let z = self.logits(x, n)?;
        Ok(z.chunks(self.n_classes)
            .map(|row| row.iter().enumerate().fold((0, f64::NEG_INFINITY), |best, (c, &v)| if v > best.1 { (c, v) } else { best }).0)
            .collect())
    }

    /// Fraction of rows whose predicted class equals y.
    pub fn accuracy(&self, x: &[f64], n: usize, y: &[usize]) -> Result<f64> {
        if y.len() != n {
            return Err(Error::Msg(format!("logreg: {n} rows but {} labels", y.len())));
        }
        let pred = self.predict(x, n)?;
        Ok(pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / n as f64)
    }
}
