//! Softmax and log-softmax over the last axis, and the fused cross-entropy loss with its backward.
//! Twin of kernels/softmax_xent.cu. x is viewed as (N, C) rows; one task per row, rayon across
//! rows when there is enough work (PAR_MIN). Sums of exponentials accumulate in f64.
//!
//! Numerically stable form (subtract the row max m before exponentiating):
//!   softmax(x)_j     = exp(x_j - m) / sum_k exp(x_k - m)
//!   log_softmax(x)_j = x_j - m - ln sum_k exp(x_k - m)
//! Backward from the output y (no need to keep x):
//!   softmax:     dx = y * (dy - sum_k dy_k y_k)
//!   log-softmax: dx = dy - exp(y) * sum_k dy_k
//! Cross-entropy over rows whose target t != ignore (count of them = M):
//!   loss = (1/M) sum_rows (logsumexp(x) - x_t),   0 when M = 0
//!   dx   = g (softmax(x) - onehot(t)) / M,         ignored rows 0

use super::{expect_len, for_rows, CpuStorage, Real, PAR_MIN};
use crate::{Error, Result};
use rayon::prelude::*;

/// Row max m and ln sum_k exp(x_k - m), so that logsumexp(x) = m + ln_sum.
fn max_and_ln_sum<T: Real>(x: &[T]) -> (T, T) {
    let m = x.iter().fold(T::NEG_INF, |a, &b| a.max(b));
    let s: f64 = x.iter().map(|&v| (v - m).exp().to_f64()).sum();
    (m, T::from_f64(s.ln()))
}

/// x: (N, C) -> softmax over C, or log-softmax when `log`.
pub fn softmax(x: &CpuStorage, n: usize, c: usize, log: bool) -> Result<CpuStorage> {
    expect_len("softmax", "x", x.len(), n * c)?;
    crate::float_op!("softmax", (x), softmax_t(x, c, log))
}

fn softmax_t<T: Real>(x: &[T], c: usize, log: bool) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    for_rows(&mut y, c, |r, yr| {
        let xr = &x[r * c..(r + 1) * c];
        let (m, ln_s) = max_and_ln_sum(xr);
        if log {
            for (yj, &xj) in yr.iter_mut().zip(xr) {
                *yj = xj - m - ln_s;
            }
        } else {
            // exp(x - m - ln s) = exp(x - m) / s, without a second pass for the division
            for (yj, &xj) in yr.iter_mut().zip(xr) {
                *yj = (xj - m - ln_s).exp();
            }
        }
    });
    y
}

/// y: the forward output, dy: (N, C) -> dx (N, C).
pub fn softmax_backward(y: &CpuStorage, dy: &CpuStorage, n: usize, c: usize, log: bool) -> Result<CpuStorage> {
    expect_len("softmax_backward", "y", y.len(), n * c)?;
    expect_len("softmax_backward", "dy", dy.len(), n * c)?;
    crate::float_op!("softmax_backward", (y, dy), softmax_backward_t(y, dy, c, log))
}

fn softmax_backward_t<T: Real>(y: &[T], dy: &[T], c: usize, log: bool) -> Vec<T> {
    let mut dx = vec![T::ZERO; y.len()];
    for_rows(&mut dx, c, |r, dxr| {
        let (yr, dyr) = (&y[r * c..(r + 1) * c], &dy[r * c..(r + 1) * c]);
        if log {
            let s = T::from_f64(dyr.iter().map(|v| v.to_f64()).sum());
            for ((dxj, &yj), &dyj) in dxr.iter_mut().zip(yr).zip(dyr) {
                *dxj = dyj - yj.exp() * s;
            }
        } else {
            let dot = T::from_f64(yr.iter().zip(dyr).map(|(&a, &b)| (a * b).to_f64()).sum());
            for ((dxj, &yj), &dyj) in dxr.iter_mut().zip(yr).zip(dyr) {
                *dxj = yj * (dyj - dot);
            }
        }
    });
    dx
}

/// Every target is `ignore` or < V; the error names the op, the bad target, its row and V.
pub fn check_targets(targets: &[u32], v: usize, ignore: u32) -> Result<()> {
    match targets.iter().enumerate().find(|(_, &t)| t != ignore && t as usize >= v) {
        Some((i, &t)) => Err(Error::range("cross_entropy", format!("target {t} at position {i} is >= V = {v} (and is not ignore_index {ignore})"))),
        None => Ok(()),
    }
}

/// logits: (N, V), targets: (N) -> one element: the mean loss over rows not ignored.
pub fn cross_entropy(logits: &CpuStorage, targets: &[u32], n: usize, v: usize, ignore: u32) -> Result<CpuStorage> {
    expect_len("cross_entropy", "logits", logits.len(), n * v)?;
    expect_len("cross_entropy", "targets", targets.len(), n)?;
    check_targets(targets, v, ignore)?;
    crate::float_op!("cross_entropy", (logits), vec![mean_loss_t(logits, targets, v, ignore)])
}

/// The loss of every row (0 for ignored rows), summed in row order so the result is deterministic.
fn mean_loss_t<T: Real>(x: &[T], targets: &[u32], v: usize, ignore: u32) -> T {
    let row_loss = |(r, &t): (usize, &u32)| -> f64 {
        if t == ignore {
            return 0.0;
        }
        let xr = &x[r * v..(r + 1) * v];
        let (m, ln_s) = max_and_ln_sum(xr);
        (m + ln_s - xr[t as usize]).to_f64()
    };
    let losses: Vec<f64> = if x.len() >= PAR_MIN {
        targets.par_iter().enumerate().map(row_loss).collect()
    } else {
        targets.iter().enumerate().map(row_loss).collect()
    };
    let count = targets.iter().filter(|&&t| t != ignore).count();
    if count == 0 {
        return T::ZERO;
    }
    T::from_f64(losses.iter().sum::<f64>() / count as f64)
}

/// dloss: one element -> dlogits (N, V) = dloss (softmax - onehot) / count, ignored rows zero.
pub fn cross_entropy_backward(logits: &CpuStorage, targets: &[u32], dloss: &CpuStorage, n: usize, v: usize, ignore: u32) -> Result<CpuStorage> {
    expect_len("cross_entropy_backward", "logits", logits.len(), n * v)?;
    expect_len("cross_entropy_backward", "targets", targets.len(), n)?;
    expect_len("cross_entropy_backward", "dloss", dloss.len(), 1)?;
    check_targets(targets, v, ignore)?;
    crate::float_op!("cross_entropy_backward", (logits, dloss), cross_entropy_backward_t(logits, targets, dloss[0], v, ignore))
}

fn cross_entropy_backward_t<T: Real>(x: &[T], targets: &[u32], g: T, v: usize, ignore: u32) -> Vec<T> {
    let count = targets.iter().filter(|&&t| t != ignore).count();
    let mut dx = vec![T::ZERO; x.len()];
    if count == 0 {
        return dx;
    }
    let scale = g / T::from_f64(count as f64);
    for_rows(&mut dx, v, |r, dxr| {
        let t = targets[r];
        if t == ignore {
            return;
        }
        let xr = &x[r * v..(r + 1) * v];
        let (m, ln_s) = max_and_ln_sum(xr);
        for (dxj, &xj) in dxr.iter_mut().zip(xr) {
            *dxj = (xj - m - ln_s).exp() * scale;
        }
        dxr[t as usize] -= scale;
    });
    dx
}
