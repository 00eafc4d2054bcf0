//! parity_attention_*: flash-style causal GQA attention, forward and backward, f32 and bf16
//! storage, against the CPU twin: odd T (1, 77), KV-cache decoding (Tq < Tk), Hq != Hkv, odd D.
use super::*;
use kiln::backend::AttnDims;

/// (b, hq, hkv, tq, tk, d)
const CASES: &[(usize, usize, usize, usize, usize, usize)] = &[
    (1, 1, 1, 1, 1, 64),
    (2, 4, 2, 77, 77, 60),   // GQA, T and D not tile multiples
    (1, 3, 1, 5, 40, 80),    // decoding: 5 new queries over 40 cached keys
    (1, 2, 2, 1, 70, 128),   // one query over 70 keys (crosses a 64-key tile)
    (1, 2, 1, 100, 130, 96), // several tiles of both kinds, Tq < Tk
    (1, 1, 1, 33, 33, 7),
    (1, 2, 2, 130, 130, 64), // three 64-row query blocks (the bf16 tensor-core forward), 16-byte loads
];

fn dims(&(b, hq, hkv, tq, tk, d): &(usize, usize, usize, usize, usize, usize)) -> AttnDims {
    AttnDims { b, hq, hkv, tq, tk, d, scale: 1.0 / (d as f64).sqrt() }
}

fn inputs(c: &(usize, usize, usize, usize, usize, usize), seed: u64) -> [Tensor; 4] {
    let &(b, hq, hkv, tq, tk, d) = c;
    [randn(&[b * hq * tq * d], seed), randn(&[b * hkv * tk * d], seed + 1), randn(&[b * hkv * tk * d], seed + 2), randn(&[b * hq * tq * d], seed + 3)]
}

fn forward(dtype: DType, tol: f64) {
    for (i, c) in CASES.iter().enumerate() {
        let dm = dims(c);
        let [q, k, v, _] = inputs(c, 10 * i as u64);
        let want = backend::attention(&on_cpu(&q, dtype), &on_cpu(&k, dtype), &on_cpu(&v, dtype), dm).unwrap();
        let (gq, gk, gv) = (on_gpu(&q, dtype), on_gpu(&k, dtype), on_gpu(&v, dtype));
        let got = twice1("attention", || backend::attention(&gq, &gk, &gv, dm).unwrap());
        assert_close(&format!("attention fwd {dtype:?} {c:?}"), &got.cast(DType::F32).unwrap(), &want, tol);
    }
}

fn backward(dtype: DType, tol: f64) {
    for (i, c) in CASES.iter().enumerate() {
        let dm = dims(c);
        let [q, k, v, g] = inputs(c, 100 + 10 * i as u64);
        let want = backend::attention_backward(&on_cpu(&q, dtype), &on_cpu(&k, dtype), &on_cpu(&v, dtype), &on_cpu(&g, dtype), dm).unwrap();
        let (gq, gk, gv, gg) = (on_gpu(&q, dtype), on_gpu(&k, dtype), on_gpu(&v, dtype), on_gpu(&g, dtype));
        let got = twice_n("attention_backward", || backend::attention_backward(&gq, &gk, &gv, &gg, dm).unwrap());
        for (name, (a, b)) in ["dq", "dk", "dv"].iter().zip(got.iter().zip(&want)) {
            check(&format!("attention bwd {name} {dtype:?} {c:?}"), &a.cast(DType::F32).unwrap(), b, tol);
        }
    }
}

/// assert_close, except where the reference is exactly zero (Tq = Tk = 1: one key, P = 1, so
/// dS = P (dP - dP) = 0 and dQ = dK = 0), where a relative error is undefined: there every
/// element must be within `tol` of zero in absolute terms (the GPU's delta = dO . O rounds
/// differently from the CPU's rowsum(P * dP)).
fn check(what: &str, got: &Storage, want: &Storage, tol: f64) {
    if vals(want).iter().any(|&w| w != 0.0) {
        return assert_close(what, got, want, tol);
    }
    let g = vals(got);
    assert_eq!(g.len(), vals(want).len(), "{what}: length");
    let worst = g.iter().map(|x| if x.is_finite() { x.abs() } else { f64::INFINITY }).fold(0.0, f64::max);
    println!("parity {what}: reference is zero, max |gpu| = {worst:.3e} (tol {tol:.0e})");
    assert!(worst <= tol, "{what}: max |gpu| {worst:.3e} > {tol:.0e} where the CPU gives exactly 0");
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_attention_forward_f32() {
    setup();
    forward(DType::F32, TOL_F32);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_attention_forward_bf16() {
    setup();
    forward(DType::BF16, TOL_BF16);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_attention_backward_f32() {
    setup();
    backward(DType::F32, TOL_F32);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_attention_backward_bf16() {
    setup();
    backward(DType::BF16, TOL_BF16);
}
