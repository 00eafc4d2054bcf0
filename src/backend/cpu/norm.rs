//! RMSNorm and LayerNorm over the last axis, forward and backward. Twin of kernels/norm.cu.
//! x is viewed as (N, C) rows; w, b are (C). Row statistics accumulate in f64; rayon over rows
//! for dx, and over column blocks for dw / db (each column summed over rows in row order, so the
//! result does not depend on the thread count).
//!
//! RMSNorm (Zhang & Sennrich 2019; Llama):  r = 1 / sqrt(mean(x^2) + eps),  y = x r w
//!   dx = r (w dy) - r^3 x mean(w dy x),        dw = sum_rows dy x r
//! LayerNorm (Ba et al. 2016; GPT-2, biased variance):
//!   mu = mean(x), s = 1 / sqrt(mean((x - mu)^2) + eps), xh = (x - mu) s,  y = xh w + b
//!   dx = s (w dy - mean(w dy) - xh mean(w dy xh)),  dw = sum_rows dy xh,  db = sum_rows dy

use super::{expect_len, for_rows, lane_sum, CpuStorage, Real, PAR_MIN};
use crate::Result;
use rayon::prelude::*;

/// [f(0), .., f(n - 1)]: one statistic per row, in parallel when the (N, C) input is large.
fn per_row<S: Send>(n: usize, c: usize, f: impl Fn(usize) -> S + Sync + Send) -> Vec<S> {
    if n * c >= PAR_MIN {
        (0..n).into_par_iter().map(f).collect()
    } else {
        (0..n).map(f).collect()
    }
}

/// out[j] = sum over rows r of row r's term in column j, for a (C) output. `add(r, j0, acc)` adds
/// row r's terms for columns j0.. j0 + acc.len() into acc (a slice loop, so it vectorises).
/// Columns go to threads in blocks; rows are always added in order (deterministic).
fn column_sums<T: Real>(n: usize, c: usize, add: impl Fn(usize, usize, &mut [f64]) + Sync + Send) -> Vec<T> {
    const BLOCK: usize = 64;
    let mut out = vec![T::ZERO; c];
    let block = |(bi, ob): (usize, &mut [T])| {
        let mut acc = vec![0f64; ob.len()];
        for r in 0..n {
            add(r, bi * BLOCK, &mut acc);
        }
        for (o, a) in ob.iter_mut().zip(acc) {
            *o = T::from_f64(a);
        }
    };
    if n * c >= PAR_MIN {
        out.par_chunks_mut(BLOCK).enumerate().for_each(block);
    } else {
        out.chunks_mut(BLOCK).enumerate().for_each(block);
    }
    out
}

/// 1 / sqrt(mean(x^2) + eps) of one row.
fn rms_inv<T: Real>(x: &[T], eps: f64) -> T {
    let ms = lane_sum(x, x, x, |v, _, _| v.to_f64() * v.to_f64()) / x.len() as f64;
    T::from_f64(1.0 / (ms + eps).sqrt())
}

/// (mean, 1 / sqrt(var + eps)) of one row, two-pass (biased variance).
fn mean_inv_std<T: Real>(x: &[T], eps: f64) -> (T, T) {
    let c = x.len() as f64;
    let mu = lane_sum(x, x, x, |v, _, _| v.to_f64()) / c;
    let var = lane_sum(x, x, x, |v, _, _| (v.to_f64() - mu) * (v.to_f64() - mu)) / c;
    (T::from_f64(mu), T::from_f64(1.0 / (var + eps).sqrt()))
}

/// x: (N, C), w: (C) -> y (N, C) = x / rms(x) * w.
pub fn rms_norm(x: &CpuStorage, w: &CpuStorage, n: usize, c: usize, eps: f64) -> Result<CpuStorage> {
    expect_len("rms_norm", "x", x.len(), n * c)?;
    expect_len("rms_norm", "w", w.len(), c)?;
    crate::float_op!("rms_norm", (x, w), {
        let mut y = vec![Default::default(); x.len()];
        for_rows(&mut y, c, |r, yr| {
            let xr = &x[r * c..(r + 1) * c];
            let ri = rms_inv(xr, eps);
            for ((yj, &xj), &wj) in yr.iter_mut().zip(xr).zip(w.iter()) {
                *yj = xj * ri * wj;
            }
        });
        y
    })
}

/// x, dy: (N, C), w: (C) -> [dx (N, C), dw (C)].
pub fn rms_norm_backward(x: &CpuStorage, w: &CpuStorage, dy: &CpuStorage, n: usize, c: usize, eps: f64) -> Result<Vec<CpuStorage>> {
    expect_len("rms_norm_backward", "x", x.len(), n * c)?;
    expect_len("rms_norm_backward", "w", w.len(), c)?;
    expect_len("rms_norm_backward", "dy", dy.len(), n * c)?;
    crate::float_op_multi!("rms_norm_backward", (x, w, dy), rms_norm_backward_t(x, w, dy, n, c, eps))
}

fn rms_norm_backward_t<T: Real>(x: &[T], w: &[T], dy: &[T], n: usize, c: usize, eps: f64) -> Vec<Vec<T>> {
    let ri: Vec<T> = per_row(n, c, |r| rms_inv(&x[r * c..(r + 1) * c], eps));
    let mut dx = vec![T::ZERO; x.len()];
    for_rows(&mut dx, c, |r, dxr| {
        let (xr, dyr, r1) = (&x[r * c..(r + 1) * c], &dy[r * c..(r + 1) * c], ri[r]);
        // mean over the row of (w dy) x
        let m = lane_sum(xr, dyr, w, |a, b, wj| (wj * b * a).to_f64()) / c as f64;
        let k = r1 * r1 * r1 * T::from_f64(m);
        for (((dxj, &xj), &dyj), &wj) in dxr.iter_mut().zip(xr).zip(dyr).zip(w) {
            *dxj = r1 * wj * dyj - k * xj;
        }
    });
    let dw = column_sums(n, c, |r, j0, acc| {
        let (xr, dyr) = (&x[r * c + j0..r * c + j0 + acc.len()], &dy[r * c + j0..r * c + j0 + acc.len()]);
        for ((a, &xj), &dyj) in acc.iter_mut().zip(xr).zip(dyr) {
            *a += (dyj * xj * ri[r]).to_f64();
        }
    });
    vec![dx, dw]
}

/// x: (N, C), w, b: (C) -> y (N, C) = (x - mean) / std * w + b.
pub fn layer_norm(x: &CpuStorage, w: &CpuStorage, b: &CpuStorage, n: usize, c: usize, eps: f64) -> Result<CpuStorage> {
    expect_len("layer_norm", "x", x.len(), n * c)?;
    expect_len("layer_norm", "w", w.len(), c)?;
    expect_len("layer_norm", "b", b.len(), c)?;
    crate::float_op!("layer_norm", (x, w, b), {
        let mut y = vec![Default::default(); x.len()];
        for_rows(&mut y, c, |r, yr| {
            let xr = &x[r * c..(r + 1) * c];
            let (mu, s) = mean_inv_std(xr, eps);
            for (((yj, &xj), &wj), &bj) in yr.iter_mut().zip(xr).zip(w.iter()).zip(b.iter()) {
                *yj = (xj - mu) * s * wj + bj;
            }
        });
        y
    })
}

/// x, dy: (N, C), w: (C) -> [dx (N, C), dw (C), db (C)]. (b does not enter any gradient.)
pub fn layer_norm_backward(x: &CpuStorage, w: &CpuStorage, dy: &CpuStorage, n: usize, c: usize, eps: f64) -> Result<Vec<CpuStorage>> {
    expect_len("layer_norm_backward", "x", x.len(), n * c)?;
    expect_len("layer_norm_backward", "w", w.len(), c)?;
    expect_len("layer_norm_backward", "dy", dy.len(), n * c)?;
    crate::float_op_multi!("layer_norm_backward", (x, w, dy), layer_norm_backward_t(x, w, dy, n, c, eps))
}

fn layer_norm_backward_t<T: Real>(x: &[T], w: &[T], dy: &[T], n: usize, c: usize, eps: f64) -> Vec<Vec<T>> {
    let stats: Vec<(T, T)> = per_row(n, c, |r| mean_inv_std(&x[r * c..(r + 1) * c], eps));
    let mut dx = vec![T::ZERO; x.len()];
    for_rows(&mut dx, c, |r, dxr| {
        let (xr, dyr, (mu, s)) = (&x[r * c..(r + 1) * c], &dy[r * c..(r + 1) * c], stats[r]);
        // mean(w dy) and mean(w dy xh) over the row
        let m1 = lane_sum(xr, dyr, w, |_, dyj, wj| (wj * dyj).to_f64());
        let m2 = lane_sum(xr, dyr, w, |xj, dyj, wj| (wj * dyj).to_f64() * ((xj - mu) * s).to_f64());
        let (m1, m2) = (T::from_f64(m1 / c as f64), T::from_f64(m2 / c as f64));
        for (((dxj, &xj), &dyj), &wj) in dxr.iter_mut().zip(xr).zip(dyr).zip(w) {
            *dxj = s * (wj * dyj - m1 - (xj - mu) * s * m2);
        }
    });
    let dw = column_sums(n, c, |r, j0, acc| {
        let (xr, dyr, (mu, s)) = (&x[r * c + j0..r * c + j0 + acc.len()], &dy[r * c + j0..r * c + j0 + acc.len()], stats[r]);
        for ((a, &xj), &dyj) in acc.iter_mut().zip(xr).zip(dyr) {
            *a += (dyj * (xj - mu) * s).to_f64();
        }
    });
    let db = column_sums(n, c, |r, j0, acc| {
        let dyr = &dy[r * c + j0..r * c + j0 + acc.len()];
        for (a, &dyj) in acc.iter_mut().zip(dyr) {
            *a += dyj.to_f64();
        }
    });
    vec![dx, dw, db]
}
