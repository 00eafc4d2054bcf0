//! Shared test helpers: seeded inputs, closeness checks with readable failure messages, and a
//! gradcheck wrapper that also asserts something was actually compared.
#![allow(dead_code)]

use kiln::autograd::gradcheck::{gradcheck, GradcheckConfig};
use kiln::{Result, Tensor};

/// Fresh, non-zero f32 normal values: a pure function of (shape, seed).
pub fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape.to_vec(), 1.0, seed, 0).unwrap()
}

/// Same, as f64 (for gradchecks and f64 references).
pub fn randn64(shape: &[usize], seed: u64) -> Tensor {
    randn(shape, seed).to_dtype(kiln::DType::F64).unwrap()
}

/// |a - b| <= atol + rtol * |b| elementwise; prints the first mismatches.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // !(d <= tol): NaN fails
pub fn assert_close(a: &[f64], b: &[f64], atol: f64, rtol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let bad: Vec<String> = a
        .iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| !((*x - *y).abs() <= atol + rtol * y.abs()))
        .take(5)
        .map(|(i, (x, y))| format!("[{i}] {x} vs {y}"))
        .collect();
    assert!(bad.is_empty(), "{what}: mismatches (atol {atol}, rtol {rtol}): {}", bad.join(", "));
}

pub fn assert_tensors_close(a: &Tensor, b: &Tensor, atol: f64, rtol: f64, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    assert_close(&a.to_vec_f64().unwrap(), &b.to_vec_f64().unwrap(), atol, rtol, what);
}

/// Relative L2 error ||a - b|| / ||b||.
pub fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Gradcheck with the house tolerances (eps 1e-6, atol 1e-5, rtol 1e-3); panics with details.
pub fn check_grads(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    check_grads_with(f, inputs, &GradcheckConfig::default())
}

pub fn check_grads_with(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor], cfg: &GradcheckConfig) {
    match gradcheck(f, inputs, cfg) {
        Ok(r) => assert!(r.checks > 0, "gradcheck compared nothing"),
        Err(e) => panic!("{e}"),
    }
}

/// A GPT-2-style model that ignores its input and, after any prompt of `n` tokens, emits
/// `script` greedily: every weight zero but the position embeddings and the LM head; position p
/// holds a one-hot (10 x) that the head maps to script[p + 1 - n]. For testing decoders and
/// budgets with answers of a chosen length.
pub fn scripted_model(vocab: usize, n: usize, script: &[u32]) -> kiln::model::Transformer {
    use kiln::model::{Arch, Config, Transformer};
    let mut distinct: Vec<u32> = script.to_vec();
    distinct.sort();
    distinct.dedup();
    let mut cfg = Config::tiny(Arch::Gpt2, vocab);
    (cfg.d_model, cfg.n_layers, cfg.max_seq_len, cfg.tie_embeddings) = ((distinct.len() + 2).next_multiple_of(4), 1, n + script.len() + 4, false);
    let (c, t) = (cfg.d_model, cfg.max_seq_len);
    let m = Transformer::new(cfg).unwrap();
    for (name, p) in m.named_params() {
        let norm = name.contains("ln_");
        if !norm || name.ends_with(".bias") {
            p.assign(&Tensor::zeros(p.dims().to_vec(), kiln::DType::F32, kiln::Device::Cpu).unwrap()).unwrap();
        }
    }
    let mut wpe = vec![0.0f32; t * c];
    for (i, tok) in script.iter().enumerate() {
        let j = distinct.binary_search(tok).unwrap();
        wpe[(n - 1 + i) * c + j] = 10.0;
    }
    let mut head = vec![0.0f32; c * vocab];
    for (j, &tok) in distinct.iter().enumerate() {
        head[j * vocab + tok as usize] = 1.0;
    }
    m.wpe.as_ref().unwrap().assign(&Tensor::from_vec(wpe, [t, c]).unwrap()).unwrap();
    m.lm_head.as_ref().unwrap().assign(&Tensor::from_vec(head, [c, vocab]).unwrap()).unwrap();
    m
}
