//! parity_norm_*: RMSNorm and LayerNorm forward and backward (dx, dw, db), f32 and bf16, odd
//! widths (scalar and vector paths) and more rows than the backward's 256 partial blocks. (C = 1
//! is left out: RMSNorm's dx is then pure cancellation, eps / (x^2 + eps), on both devices.)
use super::*;

/// From (3, 4096): the row-in-registers path (C % 8 == 0, C <= 8192) at its smallest and largest C,
/// its fall-back just past it, and several rows per backward block with the next-row prefetch.
/// bf16 with C % 8 == 0 runs the warp-per-row kernels (norm_warp.cu): pieces a lane P = 4 at C = 8,
/// 64 and 1000 (125 pieces: the last round part-filled), P = 16 at 1032 and 4096, forward P = 32
/// at 8192 (whose backward stays on norm.cu); 37 rows give warps of several, one and no rows.
const SHAPES: &[(usize, usize)] = &[
    (1, 3), (7, 60), (33, 96), (4, 257), (300, 257), (513, 64), (3, 4096), (5, 8), (9, 8192), (2, 8200), (300, 1032),
    (37, 8), (37, 1000), (37, 4096),
];
const EPS: f64 = 1e-5;

fn tol(dtype: DType) -> f64 {
    if dtype == DType::F32 { TOL_F32 } else { TOL_BF16 }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_norm_rms_norm_fwd_bwd() {
    setup();
    for (s, &(n, c)) in SHAPES.iter().enumerate() {
        let x = randn(&[n, c], 600 + s as u64);
        let w = randn(&[c], 700 + s as u64).affine(0.5, 1.0).unwrap();
        let dy = randn(&[n, c], 800 + s as u64);
        for dtype in [DType::F32, DType::BF16] {
            let what = format!("rms_norm {dtype:?} ({n},{c})");
            let (xc, wc, dyc) = (on_cpu(&x, dtype), on_cpu(&w, dtype), on_cpu(&dy, dtype));
            let (xg, wg, dyg) = (on_gpu(&x, dtype), on_gpu(&w, dtype), on_gpu(&dy, dtype));
            let want = backend::rms_norm(&xc, &wc, n, c, EPS).unwrap();
            let got = twice1(&what, || backend::rms_norm(&xg, &wg, n, c, EPS).unwrap());
            assert_close(&what, &got, &want, tol(dtype));
            let want = backend::rms_norm_backward(&xc, &wc, &dyc, n, c, EPS).unwrap();
            let got = twice_n(&what, || backend::rms_norm_backward(&xg, &wg, &dyg, n, c, EPS).unwrap());
            assert_eq!(got.len(), 2, "{what}: [dx, dw]");
            for (i, name) in ["dx", "dw"].iter().enumerate() {
                assert_close(&format!("{what} backward {name}"), &got[i], &want[i], tol(dtype));
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_norm_layer_norm_fwd_bwd() {
    setup();
    for (s, &(n, c)) in SHAPES.iter().enumerate() {
        let x = randn(&[n, c], 900 + s as u64).affine(2.0, 0.5).unwrap();
        let w = randn(&[c], 1000 + s as u64).affine(0.5, 1.0).unwrap();
        let b = randn(&[c], 1100 + s as u64);
        let dy = randn(&[n, c], 1200 + s as u64);
        for dtype in [DType::F32, DType::BF16] {
            let what = format!("layer_norm {dtype:?} ({n},{c})");
            let (xc, wc, bc, dyc) = (on_cpu(&x, dtype), on_cpu(&w, dtype), on_cpu(&b, dtype), on_cpu(&dy, dtype));
            let (xg, wg, bg, dyg) = (on_gpu(&x, dtype), on_gpu(&w, dtype), on_gpu(&b, dtype), on_gpu(&dy, dtype));
            let want = backend::layer_norm(&xc, &wc, &bc, n, c, EPS).unwrap();
            let got = twice1(&what, || backend::layer_norm(&xg, &wg, &bg, n, c, EPS).unwrap());
            assert_close(&what, &got, &want, tol(dtype));
            let want = backend::layer_norm_backward(&xc, &wc, &dyc, n, c, EPS).unwrap();
            let got = twice_n(&what, || backend::layer_norm_backward(&xg, &wg, &dyg, n, c, EPS).unwrap());
            assert_eq!(got.len(), 3, "{what}: [dx, dw, db]");
            for (i, name) in ["dx", "dw", "db"].iter().enumerate() {
                assert_close(&format!("{what} backward {name}"), &got[i], &want[i], tol(dtype));
            }
        }
    }
}
