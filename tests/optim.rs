//! Optimisers: AdamW's first steps against the formula computed by hand in f64, decoupled weight
//! decay, SGD with momentum, schedules at their landmarks, and global-norm clipping.
mod common;
use common::*;
use kiln::autograd::Grads;
use kiln::optim::{clip_grad_norm, grad_norm, AdamW, Schedule, Sgd};
use kiln::Tensor;

#[test]
fn adamw_matches_the_formula() {
    let p = Tensor::from_vec_f64(vec![1.0, -2.0, 0.5], [3]).unwrap();
    let params = vec![("w".to_string(), p.clone())];
    let mut opt = AdamW::new(0.1);
    let (lr, b1, b2, eps, wd) = (0.01, 0.9, 0.999, 1e-8, 0.1);
    let mut want = vec![1.0, -2.0, 0.5];
    let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
    for t in 1..=3 {
        let g: Vec<f64> = want.iter().map(|x: &f64| 2.0 * x + t as f64).collect();
        let mut grads = Grads::default();
        grads.insert(&p, Tensor::from_vec_f64(g.clone(), [3]).unwrap());
        opt.step(&params, &grads, lr).unwrap();
        for i in 0..3 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let (mh, vh) = (m[i] / (1.0 - b1.powi(t)), v[i] / (1.0 - b2.powi(t)));
            want[i] -= lr * (wd * want[i] + mh / (vh.sqrt() + eps));
        }
        assert_close(&p.to_vec_f64().unwrap(), &want, 1e-14, 1e-12, &format!("step {t}"));
    }
    assert_eq!(opt.step, 3);
}

#[test]
fn sgd_momentum_and_parameters_without_gradients() {
    let p = Tensor::from_vec_f64(vec![1.0, 1.0], [2]).unwrap();
    let idle = Tensor::from_vec_f64(vec![5.0], [1]).unwrap();
    let params = vec![("p".to_string(), p.clone()), ("idle".to_string(), idle.clone())];
    let mut opt = Sgd::new(0.9, 0.0);
    let mut grads = Grads::default();
    grads.insert(&p, Tensor::from_vec_f64(vec![1.0, -1.0], [2]).unwrap());
    opt.step(&params, &grads, 0.1).unwrap();
    opt.step(&params, &grads, 0.1).unwrap();
    // buffers: 1, then 1.9 -> p = 1 - 0.1 * (1 + 1.9)
    assert_close(&p.to_vec_f64().unwrap(), &[1.0 - 0.29, 1.0 + 0.29], 1e-12, 0.0, "sgd");
    assert_eq!(idle.to_vec_f64().unwrap(), vec![5.0], "no gradient, no update");
}

#[test]
fn schedules_hit_their_landmarks() {
    let c = Schedule::WarmupCosine { warmup: 10, total: 110, min_ratio: 0.1 };
    assert!((c.factor(0) - 0.1).abs() < 1e-12 && (c.factor(9) - 1.0).abs() < 1e-12);
    assert!((c.factor(10) - 1.0).abs() < 1e-12);
    assert!((c.factor(60) - 0.55).abs() < 1e-12, "halfway down the cosine: {}", c.factor(60));
    assert!((c.factor(110) - 0.1).abs() < 1e-12 && (c.factor(500) - 0.1).abs() < 1e-12);
    let l = Schedule::WarmupLinear { warmup: 0, total: 100 };
    assert!((l.factor(50) - 0.5).abs() < 1e-12 && l.factor(100) == 0.0);
    assert_eq!(Schedule::Constant.factor(12345), 1.0);
}

#[test]
fn clipping_scales_to_the_max_norm() {
    let (a, b) = (randn64(&[3], 1), randn64(&[4], 2));
    let mut grads = Grads::default();
    grads.insert(&a, Tensor::from_vec_f64(vec![3.0, 0.0, 0.0], [3]).unwrap());
    grads.insert(&b, Tensor::from_vec_f64(vec![0.0, 4.0, 0.0, 0.0], [4]).unwrap());
    let params = [a.clone(), b.clone()];
    assert!((clip_grad_norm(&params, &mut grads, 1.0).unwrap() - 5.0).abs() < 1e-12);
    assert!((grad_norm(&params, &grads).unwrap() - 1.0).abs() < 1e-6);
    assert!((clip_grad_norm(&params, &mut grads, 10.0).unwrap() - 1.0).abs() < 1e-6, "below the max: untouched");
}
