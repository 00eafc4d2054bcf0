//! The Huber loss: quadratic for small residuals, linear for large ones, so a few outlying points
//! (loss spikes, badly converged checkpoints) cannot dominate a fit.
//!
//! Source: P. J. Huber, "Robust estimation of a location parameter", Ann. Math. Statist. 1964.
//! Used with delta = 1e-3 on log-loss residuals by Hoffmann et al. 2022 ("Chinchilla", approach 3)
//! and by Choshen et al. 2024 for scaling-law fits.
//!
//!   huber(r) = r^2 / 2                 if |r| <= delta
//!            = delta (|r| - delta / 2) otherwise
//!   huber'(r) = clamp(r, -delta, delta)

/// Huber loss of one residual.
#[inline]
pub fn huber(r: f64, delta: f64) -> f64 {
    let a = r.abs();
    if a <= delta {
        0.5 * r * r
    } else {
        delta * (a - 0.5 * delta)
    }
}

/// Its derivative with respect to the residual.
#[inline]
pub fn huber_grad(r: f64, delta: f64) -> f64 {
    r.clamp(-delta, delta)
}

/// Sum of Huber losses of `residuals`; writes d(sum)/d(residual_i) into `grad` (same length).
pub fn huber_sum(residuals: &[f64], delta: f64, grad: &mut [f64]) -> f64 {
    debug_assert_eq!(residuals.len(), grad.len());
    let mut total = 0.0;
    for (r, g) in residuals.iter().zip(grad.iter_mut()) {
        total += huber(*r, delta);
        *g = huber_grad(*r, delta);
    }
    total
}
