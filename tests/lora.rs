//! The fused LoRA linear: values against the unfused composition x W + s (x A) B, f64 gradchecks
//! of dX, dW, dA, dB (W trainable and frozen), the frozen weight getting no gradient, and errors.
mod common;
use common::*;
use kiln::{backward, Error, Tensor};

fn unfused(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, s: f64) -> Tensor {
    x.matmul(w).unwrap().add(&x.matmul(a).unwrap().matmul(b).unwrap().scale(s).unwrap()).unwrap()
}

#[test]
fn lora_matches_composition_on_odd_shapes() {
    for (n, k, m, r) in [(1, 1, 1, 1), (15, 63, 257, 1), (33, 60, 96, 16), (64, 128, 64, 256)] {
        let x = randn(&[n, k], 1);
        let w = randn(&[k, m], 2);
        let a = randn(&[k, r], 3);
        let b = randn(&[r, m], 4);
        let y = Tensor::lora(&x, &w, &a, &b, 0.5).unwrap();
        assert_eq!(y.dims(), &[n, m]);
        assert_tensors_close(&y, &unfused(&x, &w, &a, &b, 0.5), 1e-4, 1e-4, &format!("n={n} k={k} m={m} r={r}"));
    }
}

#[test]
fn lora_accepts_batched_input() {
    let x = randn(&[2, 5, 12], 1);
    let (w, a, b) = (randn(&[12, 7], 2), randn(&[12, 3], 3), randn(&[3, 7], 4));
    let y = Tensor::lora(&x, &w, &a, &b, 2.0).unwrap();
    assert_eq!(y.dims(), &[2, 5, 7]);
    let flat = Tensor::lora(&x.reshape([10, 12]).unwrap(), &w, &a, &b, 2.0).unwrap();
    assert_eq!(y.to_vec_f32().unwrap(), flat.to_vec_f32().unwrap());
}

#[test]
fn gradcheck_lora_all_inputs() {
    // Small enough to check every element of every input.
    let (n, k, m, r) = (5, 6, 7, 3);
    let inputs = [randn64(&[n, k], 1), randn64(&[k, m], 2), randn64(&[k, r], 3), randn64(&[r, m], 4)];
    check_grads(|t| Tensor::lora(&t[0], &t[1], &t[2], &t[3], 1.5), &inputs);
}

#[test]
fn gradcheck_lora_larger_directional() {
    // Above 256 elements per input the check runs along random directions (v^T J u).
    let (n, k, m, r) = (33, 20, 17, 4);
    let inputs = [randn64(&[n, k], 5), randn64(&[k, m], 6), randn64(&[k, r], 7), randn64(&[r, m], 8)];
    check_grads(|t| Tensor::lora(&t[0], &t[1], &t[2], &t[3], 0.25), &inputs);
}

#[test]
fn frozen_weight_gets_no_gradient_and_others_match_composition() {
    let x = randn64(&[9, 8], 1);
    let w = randn64(&[8, 6], 2); // frozen: requires_grad stays false
    let a = randn64(&[8, 2], 3).with_grad();
    let b = randn64(&[2, 6], 4).with_grad();
    let r = randn64(&[9, 6], 5);
    let g = backward(&Tensor::lora(&x, &w, &a, &b, 2.0).unwrap().mul(&r).unwrap().sum_all().unwrap()).unwrap();
    assert!(g.get(&w).is_none() && g.get(&x).is_none(), "frozen tensors must get no gradient");
    let g2 = backward(&unfused(&x, &w, &a, &b, 2.0).mul(&r).unwrap().sum_all().unwrap()).unwrap();
    assert_tensors_close(g.get(&a).unwrap(), g2.get(&a).unwrap(), 1e-12, 1e-10, "dA");
    assert_tensors_close(g.get(&b).unwrap(), g2.get(&b).unwrap(), 1e-12, 1e-10, "dB");
}

#[test]
fn lora_shape_errors_name_op_and_shapes() {
    let x = randn(&[4, 8], 1);
    let (w, a, b) = (randn(&[8, 6], 2), randn(&[8, 2], 3), randn(&[2, 6], 4));
    let bad_w = randn(&[7, 6], 5);
    let e = Tensor::lora(&x, &bad_w, &a, &b, 1.0).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "lora", .. }) && e.to_string().contains("[7, 6]"), "{e}");
    let e = Tensor::lora(&x, &w, &randn(&[5, 2], 6), &b, 1.0).unwrap_err();
    assert!(e.to_string().contains("lora") && e.to_string().contains("[5, 2]"), "{e}");
    let e = Tensor::lora(&x, &w, &a, &randn(&[3, 6], 7), 1.0).unwrap_err();
    assert!(e.to_string().contains("[3, 6]"), "{e}");
    let e = Tensor::lora(&x.to_dtype(kiln::DType::F64).unwrap(), &w, &a, &b, 1.0).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch { op: "lora", .. }), "{e}");
}
