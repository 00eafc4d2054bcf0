//! Elementwise ops with broadcasting, activations, reductions: values against direct f64
//! formulas, f64 gradchecks of every differentiable one, and shape/dtype errors.
mod common;
use common::*;
use kiln::{Error, Tensor};

#[test]
fn broadcasting_values() {
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap();
    let b = Tensor::from_vec(vec![10.0, 20.0, 30.0], [3]).unwrap();
    assert_eq!(a.add(&b).unwrap().to_vec_f32().unwrap(), vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    let col = Tensor::from_vec(vec![2.0, 3.0], [2, 1]).unwrap();
    assert_eq!(a.mul(&col).unwrap().to_vec_f32().unwrap(), vec![2.0, 4.0, 6.0, 12.0, 15.0, 18.0]);
    // (2,1) op (1,3) -> (2,3)
    let row = Tensor::from_vec(vec![1.0, 2.0, 4.0], [1, 3]).unwrap();
    assert_eq!(col.sub(&row).unwrap().to_vec_f32().unwrap(), vec![1.0, 0.0, -2.0, 2.0, 1.0, -1.0]);
    assert_eq!(a.div(&Tensor::scalar(2.0)).unwrap().to_vec_f32().unwrap()[..2], [0.5, 1.0]);
}

#[test]
fn activations_match_formulas() {
    let x = randn64(&[64], 1);
    let xs = x.to_vec_f64().unwrap();
    let gelu: Vec<f64> = xs.iter().map(|&v| 0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh())).collect();
    assert_close(&x.gelu().unwrap().to_vec_f64().unwrap(), &gelu, 1e-12, 1e-12, "gelu");
    let silu: Vec<f64> = xs.iter().map(|&v| v / (1.0 + (-v).exp())).collect();
    assert_close(&x.silu().unwrap().to_vec_f64().unwrap(), &silu, 1e-12, 1e-12, "silu");
    let up = randn64(&[64], 2);
    let sw: Vec<f64> = silu.iter().zip(up.to_vec_f64().unwrap()).map(|(s, u)| s * u).collect();
    assert_close(&Tensor::swiglu(&x, &up).unwrap().to_vec_f64().unwrap(), &sw, 1e-12, 1e-12, "swiglu");
}

#[test]
fn gradcheck_binary_with_broadcasting() {
    let a = randn64(&[3, 4], 1);
    let b = randn64(&[4], 2);
    let c = randn64(&[3, 1], 3);
    check_grads(|t| t[0].add(&t[1]), &[a.clone(), b.clone()]);
    check_grads(|t| t[0].sub(&t[1]), &[a.clone(), c.clone()]);
    check_grads(|t| t[0].mul(&t[1]), &[a.clone(), b.clone()]);
    let pos = b.sqr().unwrap().affine(1.0, 0.5).unwrap(); // keep the divisor away from 0
    check_grads(|t| t[0].div(&t[1]), &[a.clone(), pos]);
    check_grads(|t| t[0].maximum(&t[1]), &[a, c]);
}

#[test]
fn gradcheck_unary_and_activations() {
    let x = randn64(&[5, 7], 4);
    let pos = x.sqr().unwrap().affine(1.0, 0.1).unwrap();
    type F = fn(&Tensor) -> kiln::Result<Tensor>;
    let general: [(&str, F); 8] = [
        ("neg", Tensor::neg), ("exp", Tensor::exp), ("tanh", Tensor::tanh), ("sqr", Tensor::sqr),
        ("gelu", Tensor::gelu), ("silu", Tensor::silu), ("relu", Tensor::relu), ("affine", |t| t.affine(-1.5, 0.25)),
    ];
    for (name, f) in general {
        eprintln!("{name}");
        check_grads(|t| f(&t[0]), std::slice::from_ref(&x));
    }
    for f in [Tensor::log as F, Tensor::sqrt, Tensor::recip] {
        check_grads(|t| f(&t[0]), std::slice::from_ref(&pos));
    }
    check_grads(|t| Tensor::swiglu(&t[0], &t[1]), &[x.clone(), randn64(&[5, 7], 5)]);
}

#[test]
fn reductions_values_and_gradients() {
    let x = Tensor::from_vec(vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0], [2, 3]).unwrap();
    assert_eq!(x.sum(1, false).unwrap().to_vec_f32().unwrap(), vec![9.0, 12.0]);
    assert_eq!(x.sum(0, true).unwrap().dims(), &[1, 3]);
    assert_eq!(x.mean(0, false).unwrap().to_vec_f32().unwrap(), vec![2.5, 3.5, 4.5]);
    assert_eq!(x.max(1, false).unwrap().to_vec_f32().unwrap(), vec![5.0, 6.0]);
    assert_eq!(x.argmax(1, false).unwrap().to_vec_u32().unwrap(), vec![1, 2]);
    assert_eq!(x.argmax(0, false).unwrap().to_vec_u32().unwrap(), vec![1, 0, 1]);
    assert_eq!(x.sum_all().unwrap().to_scalar().unwrap(), 21.0);
    let y = randn64(&[3, 4, 5], 6);
    for ax in [0isize, 1, -1] {
        check_grads(|t| t[0].sum(ax, false), std::slice::from_ref(&y));
        check_grads(|t| t[0].mean(ax, true), std::slice::from_ref(&y));
        check_grads(|t| t[0].max(ax, false), std::slice::from_ref(&y));
    }
}

#[test]
fn elementwise_errors_name_op_and_shapes() {
    let a = randn(&[2, 3], 1);
    let e = a.add(&randn(&[4], 2)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "add", .. }), "{e}");
    assert!(e.to_string().contains("[2, 3]") && e.to_string().contains("[4]"), "{e}");
    let e = a.mul(&a.to_dtype(kiln::DType::F64).unwrap()).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch { op: "mul", .. }), "{e}");
    let ids = Tensor::from_vec_u32(vec![1, 2], [2]).unwrap();
    assert!(ids.exp().is_err(), "float op on U32 is refused");
    assert!(Tensor::swiglu(&a, &randn(&[3, 2], 1)).unwrap_err().to_string().contains("swiglu"));
}

/// Distance in units in the last place between two finite f32 of the same sign.
fn ulps(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

#[test]
fn fast_exp_within_two_ulp_and_exact_at_the_edges() {
    use kiln::backend::cpu::fast_exp::exp_f32;
    // A dense sweep over the whole finite range, against e^x computed in f64 and rounded.
    let (mut worst, mut at) = (0u32, 0f32);
    let mut x = -104.0f32;
    while x < 89.0 {
        let want = (x as f64).exp() as f32;
        let got = exp_f32(x);
        // Subnormal results (x < -87.3) too: their bit patterns are evenly spaced as well.
        let d = ulps(got, want);
        if d > worst {
            (worst, at) = (d, x);
        }
        x += 0.000_731;
    }
    assert!(worst <= 2, "fast exp is {worst} ulp off at x = {at}");
    assert_eq!(exp_f32(0.0), 1.0);
    assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp_f32(-200.0), 0.0);
    assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
    assert_eq!(exp_f32(89.0), f32::INFINITY);
    assert!(exp_f32(88.7).is_finite() && exp_f32(88.7) > 3e38);
    assert!(exp_f32(f32::NAN).is_nan());
    // The CPU backend's f32 exp is this one; f64 keeps libm's.
    let t = kiln::Tensor::from_vec(vec![-3.5, 0.25, 10.0], [3]).unwrap();
    let want: Vec<f32> = [-3.5f32, 0.25, 10.0].iter().map(|&v| exp_f32(v)).collect();
    assert_eq!(t.exp().unwrap().to_vec_f32().unwrap(), want);
}

#[test]
fn topk_keeps_the_k_largest_best_first() {
    // Hand-made rows: ties go to the smaller index, NaN is never taken, -inf is a value.
    let nan = f32::NAN;
    let x = Tensor::from_vec(vec![3.0, 1.0, 3.0, nan, 7.0, 2.0, nan, nan, f32::NEG_INFINITY, nan, 5.0, nan], [2, 6]).unwrap();
    let (v, i) = x.topk(3).unwrap();
    assert_eq!(v.dims(), &[2, 3]);
    assert_eq!(i.to_vec_u32().unwrap(), vec![4, 0, 2, 4, 2, u32::MAX]);
    let v = v.to_vec_f32().unwrap();
    assert_eq!(&v[..5], &[7.0, 3.0, 3.0, 5.0, f32::NEG_INFINITY]);
    assert!(v[5].is_nan(), "an empty slot's value is NaN");
    // Against a full sort on random rows of every size, k up to the limit; leading axes kept.
    for (s, &(rows, n, k)) in [(4usize, 1usize, 1usize), (3, 37, 5), (2, 64, 64), (5, 1000, 10), (2, 300, 64)].iter().enumerate() {
        let data: Vec<f32> = (0..rows * n).map(|j| ((j * 7919 + s * 13) % 23) as f32 - 11.0).collect(); // many ties
        let t = Tensor::from_vec(data.clone(), [1, rows, n]).unwrap();
        let (v, i) = t.topk(k).unwrap();
        assert_eq!(i.dims(), &[1, rows, k]);
        let (v, i) = (v.to_vec_f32().unwrap(), i.to_vec_u32().unwrap());
        for r in 0..rows {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| data[r * n + b].total_cmp(&data[r * n + a]).then(a.cmp(&b)));
            let want: Vec<u32> = order[..k].iter().map(|&j| j as u32).collect();
            assert_eq!(&i[r * k..(r + 1) * k], &want[..], "row {r} of ({rows}, {n}), k {k}");
            assert!(want.iter().zip(&v[r * k..(r + 1) * k]).all(|(&j, &x)| x == data[r * n + j as usize]));
        }
    }
    // Refused by name: k of 0, past the axis, past the limit.
    let x = Tensor::from_vec(vec![0.0; 200], [2, 100]).unwrap();
    for k in [0, 101, 65] {
        let e = x.topk(k).unwrap_err().to_string();
        assert!(e.contains("topk") && e.contains(&format!("k = {k}")), "{e}");
    }
}
