//! RoPE (rotate-half layout): values against the formula in f64, norm preservation per pair, the
//! relative-position property, inverse = undo, shared (T) positions, gradcheck, and errors.
mod common;
use common::*;
use kiln::ops::rope::{rope_inv_freq, rope_inverse};
use kiln::{DType, Error, Tensor};
use std::sync::Arc;

/// y for x (B, H, T, D) straight from the definition, in f64.
fn reference(x: &[f64], pos: &[u32], inv: &[f32], b: usize, h: usize, t: usize, d: usize) -> Vec<f64> {
    let half = d / 2;
    let mut y = vec![0.0; x.len()];
    for bi in 0..b {
        for hi in 0..h {
            for ti in 0..t {
                let o = ((bi * h + hi) * t + ti) * d;
                for i in 0..half {
                    let a = pos[bi * t + ti] as f64 * inv[i] as f64;
                    y[o + i] = x[o + i] * a.cos() - x[o + i + half] * a.sin();
                    y[o + i + half] = x[o + i + half] * a.cos() + x[o + i] * a.sin();
                }
            }
        }
    }
    y
}

fn pos(v: Vec<u32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec_u32(v, shape.to_vec()).unwrap()
}

#[test]
fn inv_freq_follows_theta_power() {
    let f = rope_inv_freq(8, 10000.0);
    assert_eq!(f.len(), 4);
    for (i, &v) in f.iter().enumerate() {
        let want = 10000f64.powf(-(2.0 * i as f64) / 8.0);
        assert!((v as f64 - want).abs() <= 1e-7 * want, "{i}: {v} vs {want}");
    }
    assert_eq!(f[0], 1.0);
}

#[test]
fn rope_matches_reference() {
    let (b, h, t, d) = (2, 3, 5, 12);
    let x = randn(&[b, h, t, d], 1);
    let p: Vec<u32> = vec![0, 1, 2, 3, 4, 7, 100, 9, 100_000, 3];
    let inv = Arc::new(rope_inv_freq(d, 10000.0));
    let y = x.rope(&pos(p.clone(), &[b, t]), inv.clone()).unwrap();
    assert_eq!(y.shape(), x.shape());
    let want = reference(&x.to_vec_f64().unwrap(), &p, &inv, b, h, t, d);
    // Angles in f64: even position 1e5 is accurate to f32 rounding of the output.
    assert_close(&y.to_vec_f64().unwrap(), &want, 1e-5, 1e-5, "rope");
    // Position 0 (batch row 0, time 0) is the identity.
    let first = |a: &Tensor| a.narrow(0, 0, 1).unwrap().narrow(2, 0, 1).unwrap().to_vec_f64().unwrap();
    assert_close(&first(&y), &first(&x), 0.0, 0.0, "position 0");
}

#[test]
fn shared_positions_equal_expanded_ones() {
    let (b, h, t, d) = (3, 2, 4, 8);
    let x = randn(&[b, h, t, d], 2);
    let inv = Arc::new(rope_inv_freq(d, 500000.0));
    let p = vec![5, 6, 7, 8];
    let a = x.rope(&pos(p.clone(), &[t]), inv.clone()).unwrap();
    let e = x.rope(&pos(p.repeat(b), &[b, t]), inv).unwrap();
    assert_close(&a.to_vec_f64().unwrap(), &e.to_vec_f64().unwrap(), 0.0, 0.0, "(T) vs (B, T)");
}

#[test]
fn rotation_preserves_each_pair_norm() {
    let (t, d) = (6, 16);
    let x = randn64(&[1, 2, t, d], 3);
    let p: Vec<u32> = (0..t as u32).map(|i| i * 37 + 1).collect();
    let y = x.rope(&pos(p, &[t]), Arc::new(rope_inv_freq(d, 10000.0))).unwrap();
    let (xv, yv) = (x.to_vec_f64().unwrap(), y.to_vec_f64().unwrap());
    for (xr, yr) in xv.chunks(d).zip(yv.chunks(d)) {
        for i in 0..d / 2 {
            let nx = xr[i].hypot(xr[i + d / 2]);
            let ny = yr[i].hypot(yr[i + d / 2]);
            assert!((nx - ny).abs() < 1e-12, "pair {i}: {nx} vs {ny}");
        }
    }
}

#[test]
fn scores_depend_only_on_relative_position() {
    // <rope(q, m), rope(k, n)> is a function of m - n: shift both positions, the dot is unchanged.
    let d = 16;
    let inv = Arc::new(rope_inv_freq(d, 10000.0));
    let q = randn64(&[1, 1, 1, d], 4);
    let k = randn64(&[1, 1, 1, d], 5);
    let dot = |m: u32, n: u32| -> f64 {
        let a = q.rope(&pos(vec![m], &[1]), inv.clone()).unwrap().to_vec_f64().unwrap();
        let b = k.rope(&pos(vec![n], &[1]), inv.clone()).unwrap().to_vec_f64().unwrap();
        a.iter().zip(&b).map(|(x, y)| x * y).sum()
    };
    for (m, n) in [(7, 3), (2, 9), (0, 0)] {
        let base = dot(m, n);
        for shift in [1, 13, 250] {
            let s = dot(m + shift, n + shift);
            assert!((s - base).abs() < 1e-9, "m {m} n {n} shift {shift}: {s} vs {base}");
        }
    }
    // ... and it does depend on m - n.
    assert!((dot(7, 3) - dot(7, 4)).abs() > 1e-3);
}

#[test]
fn inverse_undoes_forward() {
    let (b, h, t, d) = (2, 2, 3, 10);
    let x = randn64(&[b, h, t, d], 6);
    let p = pos(vec![3, 1, 4, 1, 5, 9], &[b, t]);
    let inv = Arc::new(rope_inv_freq(d, 10000.0));
    let y = x.rope(&p, inv.clone()).unwrap();
    let back = rope_inverse(&y, &p, &inv).unwrap();
    assert_close(&back.to_vec_f64().unwrap(), &x.to_vec_f64().unwrap(), 1e-12, 0.0, "inverse(rope(x))");
    // Also in f32.
    let x32 = x.to_dtype(DType::F32).unwrap();
    let back = rope_inverse(&x32.rope(&p, inv.clone()).unwrap(), &p, &inv).unwrap();
    assert_close(&back.to_vec_f64().unwrap(), &x32.to_vec_f64().unwrap(), 1e-6, 1e-6, "f32 inverse");
}

#[test]
fn gradcheck_rope() {
    let (b, h, t, d) = (2, 2, 3, 6);
    let x = randn64(&[b, h, t, d], 7);
    let inv = Arc::new(rope_inv_freq(d, 100.0));
    let p = pos(vec![0, 5, 2, 11, 3, 8], &[b, t]);
    check_grads(|a| a[0].rope(&a[1], inv.clone()), &[x.clone(), p]);
    // Shared (T) positions, and downstream of something nonlinear.
    let p = pos(vec![4, 1, 9], &[t]);
    check_grads(|a| a[0].rope(&a[1], inv.clone())?.sqr(), &[x, p]);
}

#[test]
fn bad_shapes_are_errors() {
    let inv = |d: usize| Arc::new(rope_inv_freq(d, 10000.0));
    // Odd head dim.
    let e = randn(&[1, 1, 2, 5], 1).rope(&pos(vec![0, 1], &[2]), Arc::new(vec![1.0, 0.1])).unwrap_err();
    assert!(matches!(e, Error::BadShape { op: "rope", .. }) && e.to_string().contains("even"), "{e}");
    // Positions that are neither (B, T) nor (T).
    let x = randn(&[2, 1, 3, 4], 2);
    let e = x.rope(&pos(vec![0; 6], &[3, 2]), inv(4)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::ShapeMismatch { op: "rope", .. }), "{msg}");
    assert!(msg.contains("[2, 1, 3, 4]") && msg.contains("[3, 2]"), "{msg}");
    assert!(x.rope(&pos(vec![0; 2], &[2]), inv(4)).is_err());
    // inv_freq of the wrong length.
    let e = x.rope(&pos(vec![0; 3], &[3]), inv(6)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "rope", .. }) && e.to_string().contains("inv_freq"), "{e}");
    // Wrong rank, float positions.
    assert!(randn(&[3, 4], 3).rope(&pos(vec![0; 3], &[3]), inv(4)).is_err());
    assert!(matches!(x.rope(&randn(&[3], 4), inv(4)).unwrap_err(), Error::DTypeMismatch { op: "rope", .. }));
}
