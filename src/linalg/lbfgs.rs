//! L-BFGS: unconstrained minimisation of a smooth f: R^n -> R from its value and gradient.
//!
//! Why: the Huber scaling-law fits (Hoffmann et al. 2022, Choshen et al. 2024) and the logistic
//! regression probes minimise smooth objectives with a handful to a few thousand parameters, where
//! a quasi-Newton method with limited memory is the standard tool (SciPy's L-BFGS-B and
//! scikit-learn's `lbfgs` solver are the baselines we measure against).
//!
//! Source: Nocedal & Wright, "Numerical Optimization" (2nd ed.): the two-loop recursion
//! (Algorithm 7.4) with the initial scaling gamma = s'y / y'y (eq. 7.20), and a line search that
//! enforces the strong Wolfe conditions (Algorithms 3.5 and 3.6, "bracket, then zoom") with
//! safeguarded cubic interpolation (eq. 3.59). Curvature pairs with s'y <= 0 are skipped, so the
//! implicit inverse Hessian stays positive definite.
//!
//! Stopping rules follow SciPy's L-BFGS-B defaults so that timings compare like for like:
//! max |g_i| <= gtol (1e-5), or a relative decrease (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol
//! (1e7 * machine epsilon), or the iteration / evaluation budget.

use crate::{Error, Result};
use std::collections::VecDeque;

/// Settings; `Default` matches SciPy's L-BFGS-B (m = 10, pgtol = 1e-5, factr = 1e7).
#[derive(Clone, Debug)]
pub struct LbfgsOptions {
    /// Number of stored curvature pairs (s, y).
    pub memory: usize,
    pub max_iter: usize,
    /// Budget of objective evaluations (line-search trials included).
    pub max_evals: usize,
    /// Stop when the largest gradient component is at most this.
    pub gtol: f64,
    /// Stop when one iteration lowers f by at most ftol * max(|f|, 1).
    pub ftol: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions { memory: 10, max_iter: 15_000, max_evals: 15_000, gtol: 1e-5, ftol: 1e7 * f64::EPSILON }
    }
}

/// Why the iteration ended. Only `Gradient` and `Objective` mean convergence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbfgsStop {
    Gradient,
    Objective,
    MaxIter,
    MaxEvals,
    /// The line search found no point with a lower objective along a descent direction.
    LineSearch,
}

#[derive(Clone, Debug)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    /// max |g_i| at x.
    pub grad_max: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub stop: LbfgsStop,
}

impl Minimum {
    pub fn converged(&self) -> bool {
        matches!(self.stop, LbfgsStop::Gradient | LbfgsStop::Objective)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimise `f` from `x0`. `f(x, g)` returns f(x) and writes the gradient into `g` (length n).
/// A non-finite value during the line search counts as "step too long"; a non-finite value at
/// `x0` is an error.
pub fn minimize<F>(mut f: F, x0: &[f64], opts: &LbfgsOptions) -> Result<Minimum>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    if n == 0 || opts.memory == 0 {
        return Err(Error::Msg(format!("lbfgs: need n > 0 and memory > 0 (got n = {n}, memory = {})", opts.memory)));
    }
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut evals = 1;
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Err(Error::Msg(format!("lbfgs: objective or gradient is not finite at the start point {x0:?}")));
    }
    // Curvature pairs (s, y, 1 / y's), oldest first.
    let mut pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(opts.memory);
    let mut d = vec![0.0; n];
    let mut alpha = vec![0.0; opts.memory];
    let mut ls = LineSearch::new(n);
    let mut iter = 0;
    let stop = loop {
        if max_abs(&g) <= opts.gtol {
            break LbfgsStop::Gradient;
        }
        if iter >= opts.max_iter {
            break LbfgsStop::MaxIter;
        }
        if evals >= opts.max_evals {
            break LbfgsStop::MaxEvals;
        }
        // d = -H g by the two-loop recursion (N&W Algorithm 7.4).
        d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
        for (j, (s, y, rho)) in pairs.iter().enumerate().rev() {
            alpha[j] = rho * dot(s, &d);
            d.iter_mut().zip(y).for_each(|(di, yi)| *di -= alpha[j] * yi);
        }
        if let Some((s, y, _)) = pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|di| *di *= gamma);
        }
        for (j, (s, y, rho)) in pairs.iter().enumerate() {
            let beta = rho * dot(y, &d);
            d.iter_mut().zip(s).for_each(|(di, si)| *di += (alpha[j] - beta) * si);
        }
        let mut slope = dot(&g, &d);
        if !(slope < 0.0) {
            // Not a descent direction (rounding): restart from steepest descent.
            pairs.clear();
            d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
            slope = -dot(&g, &g);
        }
        // First step: a unit-length move; afterwards the quasi-Newton step alpha = 1.
        let a0 = if pairs.is_empty() { (1.0 / dot(&d, &d).sqrt()).min(1.0) } else { 1.0 };
        let budget = opts.max_evals - evals;
        let found = ls.search(&mut f, &x, fx, slope, &d, a0, budget);
        evals += ls.evals;
        let Some((a, f_new)) = found else { break LbfgsStop::LineSearch };
        iter += 1;
        // s = a d, y = g_new - g; recycle the oldest pair's buffers when memory is full.
        let (mut s, mut y) = if pairs.len() == opts.memory {
            let (s, y, _) = pairs.pop_front().unwrap_or_default();
            (s, y)
        } else {
            (vec![0.0; n], vec![0.0; n])
        };
        for i in 0..n {
            s[i] = a * d[i];
            y[i] = ls.g_best[i] - g[i];
            x[i] = ls.x_best[i];
        }
        g.copy_from_slice(&ls.g_best);
        let sy = dot(&s, &y);
        if sy > f64::EPSILON * dot(&y, &y) {
            pairs.push_back((s, y, 1.0 / sy));
        }
        let f_old = fx;
        fx = f_new;
        if f_old - fx <= opts.ftol * f_old.abs().max(fx.abs()).max(1.0) {
            break LbfgsStop::Objective;
        }
    };
    Ok(Minimum { grad_max: max_abs(&g), x, f: fx, iterations: iter, evaluations: evals, stop })
}

/// One evaluated trial point along the search direction: step, value, directional derivative.
#[derive(Clone, Copy)]
struct Trial {
    a: f64,
    f: f64,
    slope: f64,
}

/// Strong-Wolfe line search with its scratch buffers (reused across iterations).
struct LineSearch {
    x_try: Vec<f64>,
    g_try: Vec<f64>,
    /// The point with the lowest objective seen that satisfies sufficient decrease.
    x_best: Vec<f64>,
    g_best: Vec<f64>,
    evals: usize,
}

const C1: f64 = 1e-4; // sufficient decrease
const C2: f64 = 0.9; // curvature (the usual choice for quasi-Newton methods)
const MAX_ZOOM: usize = 50;

impl LineSearch {
    fn new(n: usize) -> Self {
        LineSearch { x_try: vec![0.0; n], g_try: vec![0.0; n], x_best: vec![0.0; n], g_best: vec![0.0; n], evals: 0 }
    }

    fn eval<F: FnMut(&[f64], &mut [f64]) -> f64>(&mut self, f: &mut F, x: &[f64], d: &[f64], a: f64) -> Trial {
        for i in 0..x.len() {
            self.x_try[i] = x[i] + a * d[i];
        }
        let fa = f(&self.x_try, &mut self.g_try);
        self.evals += 1;
        let slope = dot(&self.g_try, d);
        if fa.is_finite() && slope.is_finite() {
            Trial { a, f: fa, slope }
        } else {
            Trial { a, f: f64::INFINITY, slope: f64::NAN }
        }
    }

    fn keep(&mut self) {
        self.x_best.copy_from_slice(&self.x_try);
        self.g_best.copy_from_slice(&self.g_try);
    }

    /// Returns (step, f at step) with the point and gradient in x_best / g_best, or None if no
    /// step with sufficient decrease was found within `budget` evaluations.
    #[allow(clippy::too_many_arguments)]
    fn search<F: FnMut(&[f64], &mut [f64]) -> f64>(
        &mut self, f: &mut F, x: &[f64], f0: f64, slope0: f64, d: &[f64], a0: f64, budget: usize,
    ) -> Option<(f64, f64)> {
        self.evals = 0;
        let armijo = |t: &Trial| t.f <= f0 + C1 * t.a * slope0;
        let wolfe = |t: &Trial| t.slope.abs() <= -C2 * slope0;
        let mut prev = Trial { a: 0.0, f: f0, slope: slope0 };
        let mut a = a0;
        // Bracketing phase (N&W Algorithm 3.5): grow the step until the interval holds a Wolfe point.
        let (mut lo, mut hi) = loop {
            if self.evals >= budget {
                return None;
            }
            let t = self.eval(f, x, d, a);
            if !armijo(&t) || (prev.a > 0.0 && t.f >= prev.f) {
                break (prev, t);
            }
            self.keep();
            if wolfe(&t) {
                return Some((t.a, t.f));
            }
            if t.slope >= 0.0 {
                break (t, prev);
            }
            prev = t;
            a *= 2.0;
            if !a.is_finite() {
                return None;
            }
        };
        // Zoom phase (N&W Algorithm 3.6): `lo` always satisfies sufficient decrease and has the
        // lowest value seen; the interval between lo and hi contains a strong-Wolfe point.
        for _ in 0..MAX_ZOOM {
            if self.evals >= budget || (hi.a - lo.a).abs() <= 1e-12 * lo.a.abs().max(1e-12) {
                break;
            }
            let a = interpolate(&lo, &hi);
            let t = self.eval(f, x, d, a);
            if !armijo(&t) || t.f >= lo.f {
                hi = t;
            } else {
                self.keep();
                if wolfe(&t) {
                    return Some((t.a, t.f));
                }
                if t.slope * (hi.a - lo.a) >= 0.0 {
                    hi = lo;
                }
                lo = t;
            }
        }
        // No strong-Wolfe point within the budget: settle for the best decrease found, if any.
        (lo.a > 0.0).then_some((lo.a, lo.f))
    }
}

/// Minimiser of the cubic through (a, f, slope) at both ends (N&W eq. 3.59), kept at least 10% of
/// the interval away from either end; bisection when the cubic is unusable (e.g. f = inf).
fn interpolate(p: &Trial, q: &Trial) -> f64 {
    let (lo, hi) = (p.a.min(q.a), p.a.max(q.a));
    let margin = 0.1 * (hi - lo);
    let mid = 0.5 * (lo + hi);
    if !(p.f.is_finite() && q.f.is_finite() && p.slope.is_finite() && q.slope.is_finite()) {
        return mid;
    }
    let d1 = p.slope + q.slope - 3.0 * (p.f - q.f) / (p.a - q.a);
    let disc = d1 * d1 - p.slope * q.slope;
    if disc < 0.0 {
        return mid;
    }
    let d2 = (q.a - p.a).signum() * disc.sqrt();
    let a = q.a - (q.a - p.a) * (q.slope + d2 - d1) / (q.slope - p.slope + 2.0 * d2);
    if a.is_finite() && a >= lo + margin && a <= hi - margin {
        a
    } else {
        mid
    }
}
