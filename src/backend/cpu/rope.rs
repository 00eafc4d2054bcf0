//! Rotary position embedding (Su et al. 2021, "RoFormer"), in the "rotate half" layout of
//! HF Llama: dimension i is paired with i + D/2 (not with its neighbour). Twin of kernels/rope.cu.
//!
//! x: (B, H, T, D), positions: (B, T), inv_freq: (D/2); for each pair i < D/2, with
//! `a = position * inv_freq[i]`:
//!   y_i       = x_i cos a - x_{i+D/2} sin a
//!   y_{i+D/2} = x_{i+D/2} cos a + x_i sin a
//! A rotation: its inverse (rotate by -a) is also its transpose, hence the backward pass.
//! Angles and their cos/sin are computed in f64 (positions reach 1e5 and beyond, where an f32
//! product loses the angle), once per (B, T) row, then shared by the H heads.

use super::{CpuStorage, Real, PAR_MIN};
use crate::tensor::Shape;
use crate::{Error, Result};
use rayon::prelude::*;

/// x: (B, H, T, D) -> rotated (by minus the angle when `inverse`), same shape.
#[allow(clippy::too_many_arguments)]
pub fn rope(x: &CpuStorage, positions: &[u32], inv_freq: &[f32], b: usize, h: usize, t: usize, d: usize, inverse: bool) -> Result<CpuStorage> {
    let bad = |detail: String| Err(Error::bad_shape("rope", &Shape(vec![b, h, t, d]), detail));
    if d % 2 != 0 {
        return bad(format!("the head dim D = {d} must be even"));
    }
    if x.len() != b * h * t * d {
        return bad(format!("x holds {} elements", x.len()));
    }
    if positions.len() != b * t {
        return bad(format!("positions hold {} elements, expected B * T = {}", positions.len(), b * t));
    }
    if inv_freq.len() != d / 2 {
        return bad(format!("inv_freq has {} entries, expected D / 2 = {}", inv_freq.len(), d / 2));
    }
    // cos/sin table: (B, T, D/2), in f64, rounded to T once.
    let sign = if inverse { -1.0 } else { 1.0 };
    let table: Vec<(f64, f64)> = positions
        .iter()
        .flat_map(|&p| inv_freq.iter().map(move |&f| {
            let (s, c) = (p as f64 * f as f64).sin_cos();
            (c, sign * s)
        }))
        .collect();
    crate::float_op!("rope", (x), rope_t(x, &table, h, t, d))
}

fn rope_t<T: Real>(x: &[T], table: &[(f64, f64)], h: usize, t: usize, d: usize) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    if d == 0 {
        return y;
    }
    let half = d / 2;
    let table: Vec<(T, T)> = table.iter().map(|&(c, s)| (T::from_f64(c), T::from_f64(s))).collect();
    // one task per (b, h, t) row of D elements
    let row = |r: usize, yr: &mut [T]| {
        let (bi, ti) = (r / (h * t), r % t);
        let cs = &table[(bi * t + ti) * half..(bi * t + ti + 1) * half];
        let xr = &x[r * d..(r + 1) * d];
        let (x1, x2) = xr.split_at(half);
        let (y1, y2) = yr.split_at_mut(half);
        for i in 0..half {
            let (c, s) = cs[i];
            y1[i] = x1[i] * c - x2[i] * s;
            y2[i] = x2[i] * c + x1[i] * s;
        }
    };
    if y.len() >= PAR_MIN {
        y.par_chunks_mut(d).enumerate().for_each(|(r, yr)| row(r, yr));
    } else {
        y.chunks_mut(d).enumerate().for_each(|(r, yr)| row(r, yr));
    }
    y
}
