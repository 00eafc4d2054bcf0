//! Multi-adapter LoRA: every row equals the single-adapter `lora` with its own adapter (values
//! and gradients, unused adapters getting zero gradients), f64 gradchecks of dX, dW, dA, dB, the
//! frozen base weight getting no gradient, and errors (ids out of range, wrong counts, shapes).
//! Shapes: x (N, K), w (K, M), a (G, K, R), b (G, R, M), ids (N), scales (G).
mod common;
use common::*;
use kiln::{backward, Tensor};

fn inputs(n: usize, k: usize, m: usize, r: usize, g: usize, seed: u64) -> [Tensor; 4] {
    [randn64(&[n, k], seed), randn64(&[k, m], seed + 1), randn64(&[g, k, r], seed + 2), randn64(&[g, r, m], seed + 3)]
}

/// Adapter g of the stacked (G, ...) tensor.
fn adapter(t: &Tensor, g: usize) -> Tensor {
    let d = t.dims();
    t.narrow(0, g, 1).unwrap().reshape(vec![d[1], d[2]]).unwrap()
}

/// Row by row with the single-adapter op, rows concatenated.
fn per_row(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, ids: &[u32], scales: &[f64]) -> Tensor {
    let rows: Vec<Tensor> = ids
        .iter()
        .enumerate()
        .map(|(i, &g)| Tensor::lora(&x.narrow(0, i, 1).unwrap(), w, &adapter(a, g as usize), &adapter(b, g as usize), scales[g as usize]).unwrap())
        .collect();
    Tensor::concat(&rows, 0).unwrap()
}

const IDS: [u32; 11] = [2, 0, 0, 3, 2, 2, 0, 3, 3, 0, 2]; // adapter 1 unused

#[test]
fn multi_adapter_equals_per_row_lora() {
    let scales = [0.5, 2.0, -1.0, 0.25];
    for (k, m, r) in [(6, 7, 1), (33, 20, 8), (64, 65, 3)] {
        let [x, w, a, b] = inputs(IDS.len(), k, m, r, 4, 10 + k as u64);
        let y = Tensor::lora_multi_adapter(&x, &w, &a, &b, &IDS, &scales).unwrap();
        assert_tensors_close(&y, &per_row(&x, &w, &a, &b, &IDS, &scales), 1e-12, 1e-10, &format!("y k={k} m={m} r={r}"));
    }
}

#[test]
fn multi_adapter_gradients_equal_per_row_lora_gradients() {
    let scales = [0.5, 2.0, -1.0, 0.25];
    let ins: Vec<Tensor> = inputs(IDS.len(), 9, 5, 2, 4, 3).into_iter().map(|t| t.with_grad()).collect();
    let r = randn64(&[IDS.len(), 5], 9);
    let loss = |y: Tensor| y.mul(&r).unwrap().sum_all().unwrap();
    let g = backward(&loss(Tensor::lora_multi_adapter(&ins[0], &ins[1], &ins[2], &ins[3], &IDS, &scales).unwrap())).unwrap();
    let want = backward(&loss(per_row(&ins[0], &ins[1], &ins[2], &ins[3], &IDS, &scales))).unwrap();
    for (t, name) in ins.iter().zip(["dx", "dw", "da", "db"]) {
        assert_tensors_close(g.get(t).unwrap(), want.get(t).unwrap(), 1e-12, 1e-10, name);
    }
    let da = g.get(&ins[2]).unwrap().to_vec_f64().unwrap();
    assert!(da[9 * 2..2 * 9 * 2].iter().all(|&v| v == 0.0), "the unused adapter 1 must get a zero dA");
}

#[test]
fn gradcheck_multi_adapter_all_inputs() {
    let ids = [1, 0, 1, 1, 2];
    let inputs = inputs(5, 4, 3, 2, 3, 21);
    check_grads(|t| Tensor::lora_multi_adapter(&t[0], &t[1], &t[2], &t[3], &ids, &[1.5, -0.5, 0.75]), &inputs);
}

#[test]
fn gradcheck_multi_adapter_larger_batched() {
    // x (3, 7, K): N = 21 rows over 3 adapters; directional checks above 256 elements.
    let ids: Vec<u32> = (0..21).map(|i| (i * 7 % 3) as u32).collect();
    let x = randn64(&[3, 7, 20], 31);
    let [_, w, a, b] = inputs(1, 20, 17, 4, 3, 32);
    check_grads(|t| Tensor::lora_multi_adapter(&t[0], &t[1], &t[2], &t[3], &ids, &[0.25, 1.0, 2.0]), &[x, w, a, b]);
}

#[test]
fn frozen_weight_gets_no_gradient() {
    let [x, w, a, b] = inputs(4, 6, 5, 2, 2, 41);
    let (a, b) = (a.with_grad(), b.with_grad());
    let y = Tensor::lora_multi_adapter(&x, &w, &a, &b, &[1, 0, 1, 1], &[1.0, 2.0]).unwrap();
    let g = backward(&y.sum_all().unwrap()).unwrap();
    assert!(g.get(&w).is_none() && g.get(&x).is_none(), "frozen tensors must get no gradient");
    assert!(g.get(&a).is_some() && g.get(&b).is_some());
}

#[test]
fn multi_adapter_errors_name_op() {
    let [x, w, a, b] = inputs(4, 6, 5, 2, 2, 51);
    let err = |ids: &[u32], scales: &[f64]| Tensor::lora_multi_adapter(&x, &w, &a, &b, ids, scales).unwrap_err().to_string();
    let e = err(&[0, 1, 2, 0], &[1.0, 1.0]);
    assert!(e.contains("lora_multi_adapter") && e.contains("adapter id 2 of row 2"), "{e}");
    let e = err(&[0, 1, 1], &[1.0, 1.0]);
    assert!(e.contains("one per row"), "{e}");
    let e = err(&[0, 1, 1, 0], &[1.0]);
    assert!(e.contains("one per adapter"), "{e}");
    let e = Tensor::lora_multi_adapter(&x, &w, &a, &randn64(&[2, 3, 5], 1), &[0; 4], &[1.0, 1.0]).unwrap_err().to_string();
    assert!(e.contains("[2, 3, 5]"), "{e}");
    let e = Tensor::lora_multi_adapter(&x, &w, &adapter(&a, 0), &b, &[0; 4], &[1.0, 1.0]).unwrap_err().to_string();
    assert!(e.contains("lora_multi_adapter"), "{e}");
}
