//! Bounded non-linear least squares: minimise 0.5 |r(x)|^2 subject to lower <= x <= upper.
//!
//! Why: the published scaling-law fits (Choshen et al. 2024, following Hoffmann et al. 2022) use
//! bounded least squares on L(N, D) = E + A / N^alpha + B / D^beta with alpha, beta >= 0, from a
//! fixed start. SciPy's reference uses a trust-region reflective method; we use the simpler
//! projected Levenberg-Marquardt below, which solves the same problem and is easy to read.
//!
//! Algorithm (projected Levenberg-Marquardt with an active set):
//! - Damping metric: lambda |s|^2 by default (Levenberg; the metric of SciPy's trust-region
//!   solvers, x_scale = 1), or lambda |D s|^2 with D_ii the largest column norm of J seen so far
//!   (Marquardt; Moré, "The Levenberg-Marquardt algorithm: implementation and theory", 1978),
//!   which makes the step independent of each parameter's units. Along directions the data do not
//!   determine, the metric decides where the iteration ends.
//! - Each step solves min |J_F s + r|^2 + lambda |D_F s|^2 (D = I by default) over the free
//!   variables F by QR of the stacked matrix [J_F; sqrt(lambda) D_F] (Moré 1978), then projects
//!   x + s onto the box
//!   (Kanzow, Yamashita & Fukushima, "Levenberg-Marquardt methods with strong local convergence
//!   properties for solving nonlinear equations with convex constraints", JCAM 2004).
//! - A variable is held fixed (active) when it sits on a bound and the gradient g = J'r pushes it
//!   outward, so the projection cannot stall the other variables.
//! - The step is accepted when the actual reduction is at least 1e-4 of the reduction predicted by
//!   the linear model at the projected step; lambda follows Nielsen's update
//!   (lambda *= max(1/3, 1 - (2 rho - 1)^3) on success, lambda *= nu, nu *= 2 on failure;
//!   H. B. Nielsen, "Damping parameter in Marquardt's method", IMM-REP-1999-05).
//! - Stops as SciPy's least_squares does: cost decrease dF < ftol F, step |s| < xtol (xtol + |x|),
//!   or projected gradient max |x - P(x - g)| < gtol.

use super::dense::lstsq;
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct LsqOptions {
    /// Budget of model evaluations (each computes residuals and Jacobian).
    pub max_evals: usize,
    pub ftol: f64,
    pub xtol: f64,
    pub gtol: f64,
    /// Damping metric: false = the identity, |s|^2 (Levenberg; SciPy's trust-region methods use
    /// this by default, x_scale = 1); true = Marquardt's Jacobian column norms, |D s|^2.
    pub jacobian_scaling: bool,
}

impl Default for LsqOptions {
    /// SciPy's least_squares defaults: tolerances 1e-8, budget 100 n evaluations for n = 5,
    /// unscaled parameters.
    fn default() -> Self {
        LsqOptions { max_evals: 500, ftol: 1e-8, xtol: 1e-8, gtol: 1e-8, jacobian_scaling: false }
    }
}

/// Why the iteration ended. `MaxEvals` and `NoProgress` mean the result is not a certified minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LsqStop {
    Cost,
    Step,
    Gradient,
    MaxEvals,
    /// The damping grew past 1e16 without finding a lower cost.
    NoProgress,
}

#[derive(Clone, Debug)]
pub struct LsqFit {
    pub x: Vec<f64>,
    /// 0.5 |r(x)|^2
    pub cost: f64,
    pub evaluations: usize,
    pub iterations: usize,
    pub stop: LsqStop,
}

impl LsqFit {
    pub fn converged(&self) -> bool {
        matches!(self.stop, LsqStop::Cost | LsqStop::Step | LsqStop::Gradient)
    }
}

/// Minimise 0.5 |r(x)|^2 over the box [lower, upper] (use +-inf for no bound), from `x0`.
/// `model(x, r, jac)` writes the residuals r: (M) and the Jacobian jac: (M, N) row-major,
/// jac[i * n + j] = d r_i / d x_j.
pub fn least_squares<F>(mut model: F, x0: &[f64], m: usize, lower: &[f64], upper: &[f64], opts: &LsqOptions) -> Result<LsqFit>
where
    F: FnMut(&[f64], &mut [f64], &mut [f64]),
{
    let n = x0.len();
    if n == 0 || m == 0 || lower.len() != n || upper.len() != n {
        return Err(Error::Msg(format!(
            "least_squares: need n > 0 parameters, m > 0 residuals and n bounds each (n = {n}, m = {m}, {} lower, {} upper)",
            lower.len(),
            upper.len()
        )));
    }
    if let Some(i) = (0..n).find(|&i| !(lower[i] <= upper[i]) || !x0[i].is_finite()) {
        return Err(Error::Msg(format!(
            "least_squares: parameter {i}: need a finite start and lower <= upper (x0 = {}, bounds [{}, {}])",
            x0[i], lower[i], upper[i]
        )));
    }
    let clamp = |v: f64, i: usize| v.max(lower[i]).min(upper[i]);
    let mut x: Vec<f64> = (0..n).map(|i| clamp(x0[i], i)).collect();
    let (mut r, mut jac) = (vec![0.0; m], vec![0.0; m * n]);
    model(&x, &mut r, &mut jac);
    let mut evals = 1;
    if r.iter().chain(&jac).any(|v| !v.is_finite()) {
        return Err(Error::Msg(format!("least_squares: residuals or Jacobian not finite at the start {x:?}")));
    }
    let mut cost = 0.5 * r.iter().map(|v| v * v).sum::<f64>();
    let (mut r_try, mut jac_try) = (vec![0.0; m], vec![0.0; m * n]);
    let mut g = vec![0.0; n];
    let mut scale = vec![0.0f64; n];
    let update = |g: &mut [f64], scale: &mut [f64], r: &[f64], jac: &[f64]| {
        // g = J' r; scale_j = max(scale_j, |column j of J|)
        for j in 0..n {
            let (mut gj, mut sq) = (0.0, 0.0);
            for i in 0..m {
                let jij = jac[i * n + j];
                gj += jij * r[i];
                sq += jij * jij;
            }
            g[j] = gj;
            scale[j] = scale[j].max(sq.sqrt());
        }
    };
    update(&mut g, &mut scale, &r, &jac);
    // Initial damping 1e-3 relative to the curvature scale (Nielsen's tau): with Marquardt scaling
    // the metric already carries that scale; with the identity it is the largest diag(J'J).
    let tau = 1e-3;
    let mut lambda = if opts.jacobian_scaling { tau } else { tau * scale.iter().fold(0.0f64, |m, s| m.max(s * s)).max(1e-300) };
    let mut nu = 2.0;
    let mut iterations = 0;
    let mut aug = Vec::new();
    let mut rhs = Vec::new();
    let stop = loop {
        let pg = (0..n).map(|i| (x[i] - clamp(x[i] - g[i], i)).abs()).fold(0.0, f64::max);
        if pg <= opts.gtol {
            break LsqStop::Gradient;
        }
        if evals >= opts.max_evals {
            break LsqStop::MaxEvals;
        }
        if lambda > 1e16 {
            break LsqStop::NoProgress;
        }
        // Free variables: not pinned at a bound by an outward-pointing gradient.
        let free: Vec<usize> = (0..n)
            .filter(|&i| !((x[i] <= lower[i] && g[i] > 0.0) || (x[i] >= upper[i] && g[i] < 0.0)))
            .collect();
        let nf = free.len();
        // Stacked system [J_F; sqrt(lambda) D_F] s = [-r; 0]: (M + nf, nf).
        aug.clear();
        aug.resize((m + nf) * nf, 0.0);
        rhs.clear();
        rhs.extend(r.iter().map(|v| -v));
        rhs.resize(m + nf, 0.0);
        for i in 0..m {
            for (c, &j) in free.iter().enumerate() {
                aug[i * nf + c] = jac[i * n + j];
            }
        }
        for (c, &j) in free.iter().enumerate() {
            let d = if opts.jacobian_scaling { scale[j].max(1e-12) } else { 1.0 };
            aug[(m + c) * nf + c] = lambda.sqrt() * d;
        }
        let Ok(step) = lstsq(&aug, m + nf, nf, &rhs) else {
            (lambda, nu) = (lambda * nu, nu * 2.0);
            continue;
        };
        // Projected trial point and the step actually taken, s = P(x + step) - x.
        let mut x_try = x.clone();
        for (c, &j) in free.iter().enumerate() {
            x_try[j] = clamp(x[j] + step[c], j);
        }
        let s: Vec<f64> = (0..n).map(|i| x_try[i] - x[i]).collect();
        let s_norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
        let x_norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        if s_norm <= opts.xtol * (opts.xtol + x_norm) {
            break LsqStop::Step;
        }
        // Reduction predicted by the linear model: -(g's + 0.5 |J s|^2).
        let js2: f64 = (0..m).map(|i| (0..n).map(|j| jac[i * n + j] * s[j]).sum::<f64>().powi(2)).sum();
        let predicted = -(g.iter().zip(&s).map(|(a, b)| a * b).sum::<f64>() + 0.5 * js2);
        model(&x_try, &mut r_try, &mut jac_try);
        evals += 1;
        let finite = r_try.iter().chain(&jac_try).all(|v| v.is_finite());
        let cost_try = if finite { 0.5 * r_try.iter().map(|v| v * v).sum::<f64>() } else { f64::INFINITY };
        let rho = if predicted > 0.0 { (cost - cost_try) / predicted } else { -1.0 };
        if rho > 1e-4 {
            iterations += 1;
            let decrease = cost - cost_try;
            let cost_before = cost;
            x = x_try;
            std::mem::swap(&mut r, &mut r_try);
            std::mem::swap(&mut jac, &mut jac_try);
            cost = cost_try;
            update(&mut g, &mut scale, &r, &jac);
            lambda *= (1.0 - (2.0 * rho - 1.0).powi(3)).max(1.0 / 3.0);
            nu = 2.0;
            if decrease <= opts.ftol * cost_before {
                break LsqStop::Cost;
            }
        } else {
            (lambda, nu) = (lambda * nu, nu * 2.0);
        }
    };
    Ok(LsqFit { x, cost, evaluations: evals, iterations, stop })
}
