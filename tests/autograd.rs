//! Autograd behaviour: gradient accumulation through shared inputs and across backward passes,
//! no_grad scopes, freezing, the embedding op's deterministic scatter-add, and misuse errors.
mod common;
use common::*;
use kiln::{backward, no_grad, Tensor};

#[test]
fn shared_input_gradients_add_up() {
    // L = sum(x * x + 3x)  => dL/dx = 2x + 3
    let x = randn64(&[4, 3], 1).with_grad();
    let l = x.mul(&x).unwrap().add(&x.scale(3.0).unwrap()).unwrap().sum_all().unwrap();
    let g = backward(&l).unwrap();
    let want: Vec<f64> = x.to_vec_f64().unwrap().iter().map(|v| 2.0 * v + 3.0).collect();
    assert_close(&g.get(&x).unwrap().to_vec_f64().unwrap(), &want, 1e-12, 0.0, "dx");
}

#[test]
fn accumulating_two_passes_equals_one_pass_over_the_sum() {
    let w = randn64(&[3, 2], 2).with_grad();
    let (x1, x2) = (randn64(&[5, 3], 3), randn64(&[5, 3], 4));
    let loss = |x: &Tensor| x.matmul(&w).unwrap().tanh().unwrap().sum_all().unwrap();
    let mut g = backward(&loss(&x1)).unwrap();
    g.accumulate(backward(&loss(&x2)).unwrap()).unwrap();
    let both = backward(&loss(&x1).add(&loss(&x2)).unwrap()).unwrap();
    assert_tensors_close(g.get(&w).unwrap(), both.get(&w).unwrap(), 1e-12, 1e-12, "accumulated dW");
}

#[test]
fn no_grad_records_nothing_and_frozen_params_get_no_gradient() {
    let w = randn64(&[3, 3], 5).with_grad();
    {
        let _g = no_grad();
        let y = w.matmul(&w).unwrap();
        assert!(y.op().is_none() && !y.tracked());
        assert!(backward(&y.sum_all().unwrap()).is_err(), "nothing to differentiate");
    }
    let y = w.matmul(&w).unwrap();
    assert!(y.op().is_some(), "grad mode is back on after the scope");
    let frozen = randn64(&[3, 3], 6).with_grad();
    frozen.set_requires_grad(false);
    let g = backward(&w.mul(&frozen).unwrap().sum_all().unwrap()).unwrap();
    assert!(g.get(&frozen).is_none() && g.get(&w).is_some());
    assert_tensors_close(g.get(&w).unwrap(), &frozen, 0.0, 0.0, "d(w*f)/dw = f");
}

#[test]
fn backward_needs_a_scalar_loss() {
    let w = randn64(&[3], 7).with_grad();
    let e = backward(&w.exp().unwrap()).unwrap_err();
    assert!(e.to_string().contains("one-element"), "{e}");
}

#[test]
fn embedding_gathers_and_scatter_adds_deterministically() {
    let table = randn64(&[6, 4], 8);
    let ids = Tensor::from_vec_u32(vec![3, 0, 3, 5, 3], [5]).unwrap();
    let y = Tensor::embedding(&table, &ids).unwrap();
    assert_eq!(y.dims(), &[5, 4]);
    let tv = table.to_vec_f64().unwrap();
    assert_eq!(y.to_vec_f64().unwrap()[..4], tv[12..16]);
    check_grads(|t| Tensor::embedding(&t[0], &t[1]), &[table.clone(), ids.clone()]);
    let t = table.detach().with_grad();
    let g1 = backward(&Tensor::embedding(&t, &ids).unwrap().sqr().unwrap().sum_all().unwrap()).unwrap();
    let g2 = backward(&Tensor::embedding(&t, &ids).unwrap().sqr().unwrap().sum_all().unwrap()).unwrap();
    assert_eq!(g1.get(&t).unwrap().to_vec_f64().unwrap(), g2.get(&t).unwrap().to_vec_f64().unwrap());
    // 2-D ids: (B, T) -> (B, T, C)
    let ids2 = Tensor::from_vec_u32(vec![1, 2, 3, 4], [2, 2]).unwrap();
    assert_eq!(Tensor::embedding(&table, &ids2).unwrap().dims(), &[2, 2, 4]);
    let bad = Tensor::from_vec_u32(vec![1, 6], [2]).unwrap();
    let e = Tensor::embedding(&table, &bad).unwrap_err();
    assert!(e.to_string().contains("embedding") && e.to_string().contains("6"), "{e}");
}
