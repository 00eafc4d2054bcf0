//! Softmax, log-softmax and fused cross-entropy: values against a plain f64 reference, stability
//! with huge logits, f64 gradchecks (with ignored rows for the loss), and error reporting.
mod common;
use common::*;
use kiln::{DType, Error, Tensor};

/// Row-wise reference: (softmax, log-softmax) of each row of x (N, C), computed the textbook way
/// in f64 after subtracting the max.
fn reference(x: &[f64], c: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut p, mut lp) = (Vec::new(), Vec::new());
    for row in x.chunks(c) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
        p.extend(row.iter().map(|v| (v - m).exp() / z));
        lp.extend(row.iter().map(|v| v - m - z.ln()));
    }
    (p, lp)
}

fn reference_xent(x: &[f64], t: &[u32], v: usize, ignore: u32) -> f64 {
    let (_, lp) = reference(x, v);
    let rows: Vec<usize> = (0..t.len()).filter(|&r| t[r] != ignore).collect();
    if rows.is_empty() {
        return 0.0;
    }
    -rows.iter().map(|&r| lp[r * v + t[r] as usize]).sum::<f64>() / rows.len() as f64
}

#[test]
fn softmax_and_log_softmax_match_reference() {
    // Includes a row length that is not a power of two, and a 3-D input (rows over two axes).
    for shape in [vec![5, 7], vec![2, 3, 33], vec![1, 1], vec![64, 300]] {
        let x = randn(&shape, 11).affine(3.0, 0.5).unwrap();
        let c = *shape.last().unwrap();
        let (p, lp) = reference(&x.to_vec_f64().unwrap(), c);
        let y = x.softmax().unwrap();
        assert_eq!(y.shape(), x.shape());
        assert_close(&y.to_vec_f64().unwrap(), &p, 1e-6, 1e-5, "softmax");
        assert_close(&x.log_softmax().unwrap().to_vec_f64().unwrap(), &lp, 1e-5, 1e-5, "log_softmax");
        // Every row sums to one.
        for row in y.to_vec_f64().unwrap().chunks(c) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn large_logits_stay_finite() {
    // exp(1e4) overflows f32 and f64: only the max-subtracted form survives.
    let x = Tensor::from_vec(vec![1e4, 1e4 - 1.0, -1e4, 1e4 + 2.0, 0.0, -5.0], [2, 3]).unwrap();
    let want = reference(&x.to_vec_f64().unwrap(), 3);
    assert_close(&x.softmax().unwrap().to_vec_f64().unwrap(), &want.0, 1e-6, 1e-5, "softmax 1e4");
    let lp = x.log_softmax().unwrap().to_vec_f64().unwrap();
    assert!(lp.iter().all(|v| v.is_finite()), "{lp:?}");
    assert_close(&lp, &want.1, 1e-3, 1e-5, "log_softmax 1e4");
    let t = Tensor::from_vec_u32(vec![1, 0], [2]).unwrap();
    let loss = Tensor::cross_entropy(&x, &t, u32::MAX).unwrap().to_scalar().unwrap();
    let want = reference_xent(&x.to_vec_f64().unwrap(), &[1, 0], 3, u32::MAX);
    assert!(loss.is_finite() && (loss - want).abs() < 1e-3, "{loss} vs {want}");
}

#[test]
fn cross_entropy_matches_reference_with_ignored_rows() {
    let (n, v) = (9, 50);
    let x = randn(&[3, 3, v], 21).affine(2.0, 0.0).unwrap();
    let ignore = 7;
    let t: Vec<u32> = vec![2, 15, 7, 41, 0, 49, 7, 43, 6]; // rows 2 and 6 are ignored
    assert_eq!(t.len(), n);
    let tt = Tensor::from_vec_u32(t.clone(), [3, 3]).unwrap();
    let loss = Tensor::cross_entropy(&x, &tt, ignore).unwrap();
    assert_eq!(loss.dims(), &[] as &[usize]);
    let want = reference_xent(&x.to_vec_f64().unwrap(), &t, v, ignore);
    assert!((loss.to_scalar().unwrap() - want).abs() < 1e-5, "{} vs {want}", loss.to_scalar().unwrap());
    // With nothing ignored (ignore index outside the vocab) every row counts.
    let all = Tensor::cross_entropy(&x, &tt, u32::MAX).unwrap().to_scalar().unwrap();
    assert!((all - reference_xent(&x.to_vec_f64().unwrap(), &t, v, u32::MAX)).abs() < 1e-5);
}

#[test]
fn cross_entropy_of_all_ignored_rows_is_zero_with_zero_grad() {
    let x = randn64(&[3, 4], 5).with_grad();
    let t = Tensor::from_vec_u32(vec![9, 9, 9], [3]).unwrap();
    let loss = Tensor::cross_entropy(&x, &t, 9).unwrap();
    assert_eq!(loss.to_scalar().unwrap(), 0.0);
    let g = kiln::backward(&loss).unwrap();
    assert!(g.get(&x).unwrap().to_vec_f64().unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn cross_entropy_grad_is_softmax_minus_onehot_over_count() {
    let x = randn64(&[4, 6], 8).with_grad();
    let t = Tensor::from_vec_u32(vec![1, 0, 5, 0], [4]).unwrap();
    let loss = Tensor::cross_entropy(&x, &t, 0).unwrap(); // rows 1 and 3 ignored: count 2
    let g = kiln::backward(&loss).unwrap().get(&x).unwrap().to_vec_f64().unwrap();
    let (p, _) = reference(&x.to_vec_f64().unwrap(), 6);
    for r in 0..4 {
        for j in 0..6 {
            let want = match (r, j) {
                (1, _) | (3, _) => 0.0,
                (0, 1) | (2, 5) => (p[r * 6 + j] - 1.0) / 2.0,
                _ => p[r * 6 + j] / 2.0,
            };
            assert!((g[r * 6 + j] - want).abs() < 1e-12, "row {r} col {j}: {} vs {want}", g[r * 6 + j]);
        }
    }
}

#[test]
fn gradcheck_softmax_and_log_softmax() {
    let x = randn64(&[3, 2, 5], 31);
    check_grads(|t| t[0].softmax(), std::slice::from_ref(&x));
    check_grads(|t| t[0].log_softmax(), std::slice::from_ref(&x));
    // Composed with something downstream, so the upstream gradient is not the plain weights.
    check_grads(|t| t[0].softmax()?.sqr(), std::slice::from_ref(&x));
    // A large input: checked along random directions.
    check_grads(|t| t[0].log_softmax(), &[randn64(&[20, 33], 32)]);
}

#[test]
fn gradcheck_cross_entropy_with_ignored_rows() {
    let x = randn64(&[2, 3, 7], 41);
    let t = Tensor::from_vec_u32(vec![3, 100, 0, 6, 100, 2], [2, 3]).unwrap();
    check_grads(|a| Tensor::cross_entropy(&a[0], &a[1], 100), &[x, t.clone()]);
    // Scaled downstream, so the upstream gradient g is not 1.
    let x = randn64(&[2, 3, 7], 42);
    check_grads(|a| Tensor::cross_entropy(&a[0], &a[1], 100)?.scale(-2.5), &[x, t]);
}

#[test]
fn f32_and_f64_agree() {
    let x = randn(&[6, 40], 51);
    let x64 = x.to_dtype(DType::F64).unwrap();
    let a = x.softmax().unwrap().to_vec_f64().unwrap();
    let b = x64.softmax().unwrap().to_vec_f64().unwrap();
    assert_close(&a, &b, 1e-7, 1e-5, "softmax f32 vs f64");
}

#[test]
fn bad_targets_and_shapes_are_errors() {
    let x = randn(&[3, 5], 1);
    // A target >= V names the op, the target, its position and V.
    let t = Tensor::from_vec_u32(vec![0, 5, 1], [3]).unwrap();
    let e = Tensor::cross_entropy(&x, &t, u32::MAX).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::OutOfRange { op: "cross_entropy", .. }), "{msg}");
    assert!(msg.contains("target 5") && msg.contains("position 1") && msg.contains("V = 5"), "{msg}");
    // ... unless it is the ignore index.
    assert!(Tensor::cross_entropy(&x, &t, 5).is_ok());
    // Targets must have the leading shape of the logits.
    let t = Tensor::from_vec_u32(vec![0, 1], [2]).unwrap();
    let e = Tensor::cross_entropy(&x, &t, u32::MAX).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::ShapeMismatch { op: "cross_entropy", .. }), "{msg}");
    assert!(msg.contains("[3, 5]") && msg.contains("[2]"), "{msg}");
    // Targets must be U32; logits must be float.
    assert!(matches!(Tensor::cross_entropy(&x, &randn(&[3], 2), 0).unwrap_err(), Error::DTypeMismatch { .. }));
    let u = Tensor::from_vec_u32(vec![1, 2], [2]).unwrap();
    assert!(u.softmax().is_err());
}
