//! RMSNorm and LayerNorm: values against a plain f64 reference, f64 gradchecks of every input
//! (x, w, b), parameter gradients summed over all leading dims, and shape errors.
mod common;
use common::*;
use kiln::{Error, Tensor};

fn ref_rms(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let c = w.len();
    x.chunks(c)
        .flat_map(|row| {
            let r = (row.iter().map(|v| v * v).sum::<f64>() / c as f64 + eps).sqrt();
            row.iter().zip(w).map(move |(v, wj)| v / r * wj)
        })
        .collect()
}

fn ref_layer(x: &[f64], w: &[f64], b: &[f64], eps: f64) -> Vec<f64> {
    let c = w.len();
    x.chunks(c)
        .flat_map(|row| {
            let mu = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64;
            let sd = (var + eps).sqrt();
            row.iter().zip(w).zip(b).map(move |((v, wj), bj)| (v - mu) / sd * wj + bj)
        })
        .collect()
}

#[test]
fn rms_norm_matches_reference() {
    for (shape, eps) in [(vec![4, 7], 1e-6), (vec![2, 3, 96], 1e-5), (vec![1, 1], 1e-6), (vec![64, 300], 1e-5)] {
        let c = *shape.last().unwrap();
        let x = randn(&shape, 1).affine(2.0, 0.3).unwrap();
        let w = randn(&[c], 2);
        let y = x.rms_norm(&w, eps).unwrap();
        assert_eq!(y.shape(), x.shape());
        let want = ref_rms(&x.to_vec_f64().unwrap(), &w.to_vec_f64().unwrap(), eps);
        assert_close(&y.to_vec_f64().unwrap(), &want, 1e-5, 1e-5, &format!("rms_norm {shape:?}"));
    }
}

#[test]
fn layer_norm_matches_reference() {
    for (shape, eps) in [(vec![4, 7], 1e-5), (vec![2, 3, 60], 1e-5), (vec![3, 1], 1e-5), (vec![64, 300], 1e-6)] {
        let c = *shape.last().unwrap();
        // An offset of 10 checks that the mean is removed before the variance is taken.
        let x = randn(&shape, 3).affine(1.5, 10.0).unwrap();
        let (w, b) = (randn(&[c], 4), randn(&[c], 5));
        let y = x.layer_norm(&w, &b, eps).unwrap();
        let want = ref_layer(&x.to_vec_f64().unwrap(), &w.to_vec_f64().unwrap(), &b.to_vec_f64().unwrap(), eps);
        assert_close(&y.to_vec_f64().unwrap(), &want, 2e-5, 1e-5, &format!("layer_norm {shape:?}"));
    }
}

#[test]
fn normalised_rows_have_unit_scale() {
    let x = randn64(&[5, 32], 6).affine(7.0, -3.0).unwrap();
    let ones = Tensor::ones([32], kiln::DType::F64, kiln::Device::Cpu).unwrap();
    let zeros = Tensor::zeros([32], kiln::DType::F64, kiln::Device::Cpu).unwrap();
    let y = x.layer_norm(&ones, &zeros, 0.0).unwrap().to_vec_f64().unwrap();
    for row in y.chunks(32) {
        let mu = row.iter().sum::<f64>() / 32.0;
        let var = row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / 32.0;
        assert!(mu.abs() < 1e-12 && (var - 1.0).abs() < 1e-10, "mean {mu}, var {var}");
    }
    let y = x.rms_norm(&ones, 0.0).unwrap().to_vec_f64().unwrap();
    for row in y.chunks(32) {
        assert!((row.iter().map(|v| v * v).sum::<f64>() / 32.0 - 1.0).abs() < 1e-10);
    }
}

#[test]
fn gradcheck_rms_norm() {
    let x = randn64(&[2, 3, 6], 11);
    let w = randn64(&[6], 12);
    check_grads(|t| t[0].rms_norm(&t[1], 1e-5), &[x, w]);
    // Larger rows (checked along random directions), eps large enough to matter.
    let x = randn64(&[8, 40], 13).scale(0.1).unwrap();
    let w = randn64(&[40], 14);
    check_grads(|t| t[0].rms_norm(&t[1], 1e-2), &[x, w]);
}

#[test]
fn gradcheck_layer_norm() {
    let x = randn64(&[2, 3, 6], 21);
    let (w, b) = (randn64(&[6], 22), randn64(&[6], 23));
    check_grads(|t| t[0].layer_norm(&t[1], &t[2], 1e-5), &[x, w, b]);
    let x = randn64(&[8, 40], 24).affine(0.2, 1.0).unwrap();
    let (w, b) = (randn64(&[40], 25), randn64(&[40], 26));
    check_grads(|t| t[0].layer_norm(&t[1], &t[2], 1e-2), &[x, w, b]);
}

#[test]
fn weight_gradients_sum_over_rows() {
    // d/dw sum(rms_norm(x, w)) = sum over rows of x / rms(x); d/db sum(layer_norm) = N per column.
    let x = randn64(&[3, 4, 5], 31);
    let w = randn64(&[5], 32).with_grad();
    let b = randn64(&[5], 33).with_grad();
    let g = kiln::backward(&x.rms_norm(&w, 1e-6).unwrap().sum_all().unwrap()).unwrap();
    let ones = vec![1.0; 5];
    let xn = ref_rms(&x.to_vec_f64().unwrap(), &ones, 1e-6);
    let want: Vec<f64> = (0..5).map(|j| xn.iter().skip(j).step_by(5).sum()).collect();
    assert_close(&g.get(&w).unwrap().to_vec_f64().unwrap(), &want, 1e-12, 1e-10, "rms dw");
    let g = kiln::backward(&x.layer_norm(&w, &b, 1e-6).unwrap().sum_all().unwrap()).unwrap();
    assert_close(&g.get(&b).unwrap().to_vec_f64().unwrap(), &[12.0; 5], 1e-12, 0.0, "layer db");
}

#[test]
fn large_inputs_take_the_parallel_path() {
    // Above PAR_MIN: rows and column blocks are split across threads; results must not change.
    let x = randn64(&[300, 130], 41);
    let w = randn64(&[130], 42).with_grad();
    let b = randn64(&[130], 43);
    let y = x.layer_norm(&w, &b, 1e-5).unwrap();
    let want = ref_layer(&x.to_vec_f64().unwrap(), &w.to_vec_f64().unwrap(), &b.to_vec_f64().unwrap(), 1e-5);
    assert_close(&y.to_vec_f64().unwrap(), &want, 1e-12, 1e-10, "layer_norm large");
    let g = kiln::backward(&y.sqr().unwrap().sum_all().unwrap()).unwrap();
    // d/dw sum(y^2) = sum_rows 2 y xh, with xh = (y - b) / w
    let (yv, wv, bv) = (y.to_vec_f64().unwrap(), w.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    let want: Vec<f64> = (0..130).map(|j| (0..300).map(|r| 2.0 * yv[r * 130 + j] * (yv[r * 130 + j] - bv[j]) / wv[j]).sum()).collect();
    assert_close(&g.get(&w).unwrap().to_vec_f64().unwrap(), &want, 1e-8, 1e-8, "layer_norm large dw");
}

#[test]
fn shape_errors_name_op_and_shapes() {
    let x = randn(&[4, 8], 1);
    let e = x.rms_norm(&randn(&[7], 2), 1e-5).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::ShapeMismatch { op: "rms_norm", .. }), "{msg}");
    assert!(msg.contains("[4, 8]") && msg.contains("[7]"), "{msg}");
    let e = x.layer_norm(&randn(&[8], 2), &randn(&[1, 8], 3), 1e-5).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::ShapeMismatch { op: "layer_norm", .. }), "{msg}");
    assert!(msg.contains("[4, 8]") && msg.contains("[1, 8]"), "{msg}");
    // dtype mismatch between x and w, integer input, and a scalar input.
    assert!(matches!(x.rms_norm(&randn64(&[8], 2), 1e-5).unwrap_err(), Error::DTypeMismatch { op: "rms_norm", .. }));
    let u = Tensor::from_vec_u32(vec![1; 8], [8]).unwrap();
    assert!(u.rms_norm(&randn(&[8], 2), 1e-5).is_err());
    assert!(Tensor::scalar(1.0).rms_norm(&randn(&[1], 2), 1e-5).is_err());
}
