//! Causal GQA softmax attention: values against a naive f64 reference with an explicit mask
//! (Hq = Hkv, Hq = 2 Hkv, Hkv = 1, query blocks longer than one tile), KV-cache decoding (Tq < Tk)
//! against the last rows of the full computation, f64 gradchecks of q, k, v, and shape errors.
mod common;
use common::*;
use kiln::{Error, Tensor};

/// o[b, h, i] = sum_j softmax_j(scale q.k_j, j <= Tk - Tq + i) v_j, with kv head h / (Hq / Hkv).
fn reference(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Vec<f64> {
    let (&[b, hq, tq, d], &[_, hkv, tk, _]) = (q.dims(), k.dims()) else { panic!("rank") };
    let (qv, kv, vv) = (q.to_vec_f64().unwrap(), k.to_vec_f64().unwrap(), v.to_vec_f64().unwrap());
    let mut o = vec![0.0; qv.len()];
    for bi in 0..b {
        for h in 0..hq {
            let kh = h / (hq / hkv);
            let qo = |i: usize| ((bi * hq + h) * tq + i) * d;
            let ko = |j: usize| ((bi * hkv + kh) * tk + j) * d;
            for i in 0..tq {
                let visible = |j: usize| j <= tk - tq + i; // the causal mask
                let s: Vec<f64> = (0..tk)
                    .map(|j| if visible(j) { scale * (0..d).map(|c| qv[qo(i) + c] * kv[ko(j) + c]).sum::<f64>() } else { f64::NEG_INFINITY })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for j in 0..tk {
                    let p = (s[j] - m).exp() / z;
                    for c in 0..d {
                        o[qo(i) + c] += p * vv[ko(j) + c];
                    }
                }
            }
        }
    }
    o
}

fn qkv(b: usize, hq: usize, hkv: usize, tq: usize, tk: usize, d: usize, seed: u64) -> (Tensor, Tensor, Tensor) {
    (randn(&[b, hq, tq, d], seed), randn(&[b, hkv, tk, d], seed + 1), randn(&[b, hkv, tk, d], seed + 2))
}

#[test]
fn matches_reference_for_mha_and_gqa() {
    // (B, Hq, Hkv, T, D): plain multi-head, two groups of two, one kv head (MQA), and T = 70 so
    // that the second query block (64 rows per block) is exercised.
    for (b, hq, hkv, t, d) in [(2, 2, 2, 5, 8), (2, 4, 2, 7, 6), (1, 3, 1, 6, 4), (1, 2, 1, 70, 16)] {
        let (q, k, v) = qkv(b, hq, hkv, t, t, d, 10);
        let scale = 1.0 / (d as f64).sqrt();
        let o = Tensor::attention(&q, &k, &v, scale).unwrap();
        assert_eq!(o.shape(), q.shape());
        let what = format!("B {b} Hq {hq} Hkv {hkv} T {t} D {d}");
        assert_close(&o.to_vec_f64().unwrap(), &reference(&q, &k, &v, scale), 1e-5, 1e-4, &what);
    }
}

#[test]
fn first_query_returns_first_value() {
    // Query 0 sees only key 0: its output is v_0 whatever the scores.
    let (q, k, v) = qkv(1, 2, 1, 4, 4, 3, 20);
    let o = Tensor::attention(&q, &k, &v, 3.0).unwrap().to_vec_f64().unwrap();
    let v0 = v.narrow(2, 0, 1).unwrap().to_vec_f64().unwrap();
    assert_close(&o[..3], &v0, 1e-7, 0.0, "head 0, query 0");
    assert_close(&o[12..15], &v0, 1e-7, 0.0, "head 1, query 0");
}

#[test]
fn decoding_rows_equal_last_rows_of_full_attention() {
    // Tq < Tk: the queries are the last Tq positions of a length-Tk sequence (a KV cache).
    for (tq, tk) in [(1, 9), (3, 9), (9, 9), (5, 70)] {
        let (q, k, v) = qkv(2, 4, 2, tk, tk, 8, 30);
        let full = Tensor::attention(&q, &k, &v, 0.3).unwrap();
        let q_last = q.narrow(2, tk - tq, tq).unwrap();
        let dec = Tensor::attention(&q_last, &k, &v, 0.3).unwrap();
        assert_eq!(dec.dims(), &[2, 4, tq, 8]);
        let want = full.narrow(2, tk - tq, tq).unwrap().to_vec_f64().unwrap();
        assert_close(&dec.to_vec_f64().unwrap(), &want, 1e-6, 1e-5, &format!("Tq {tq} Tk {tk}"));
        assert_close(&dec.to_vec_f64().unwrap(), &reference(&q_last, &k, &v, 0.3), 1e-5, 1e-4, "decode vs reference");
    }
}

#[test]
fn huge_scores_stay_finite() {
    let (q, k, v) = qkv(1, 1, 1, 6, 6, 4, 40);
    let o = Tensor::attention(&q.scale(1e3).unwrap(), &k, &v, 10.0).unwrap().to_vec_f64().unwrap();
    assert!(o.iter().all(|x| x.is_finite()), "{o:?}");
}

#[test]
fn gradcheck_attention_mha() {
    let (b, h, t, d) = (1, 2, 4, 3);
    let (q, k, v) = (randn64(&[b, h, t, d], 50), randn64(&[b, h, t, d], 51), randn64(&[b, h, t, d], 52));
    check_grads(|x| Tensor::attention(&x[0], &x[1], &x[2], 0.6), &[q, k, v]);
}

#[test]
fn gradcheck_attention_gqa_and_decoding() {
    // Hq = 4, Hkv = 2 with Tq < Tk; and Hkv = 1 (every query head feeds one dk, dv).
    let (q, k, v) = (randn64(&[2, 4, 2, 3], 60), randn64(&[2, 2, 4, 3], 61), randn64(&[2, 2, 4, 3], 62));
    check_grads(|x| Tensor::attention(&x[0], &x[1], &x[2], 0.5), &[q, k, v]);
    let (q, k, v) = (randn64(&[1, 3, 3, 2], 63), randn64(&[1, 1, 3, 2], 64), randn64(&[1, 1, 3, 2], 65));
    check_grads(|x| Tensor::attention(&x[0], &x[1], &x[2], 1.0)?.sqr(), &[q, k, v]);
}

#[test]
fn gradcheck_attention_across_query_blocks() {
    // T = 67 > 64: two query blocks, each with its own key extent (checked along random directions).
    let (q, k, v) = (randn64(&[1, 2, 67, 4], 70), randn64(&[1, 1, 67, 4], 71), randn64(&[1, 1, 67, 4], 72));
    check_grads(|x| Tensor::attention(&x[0], &x[1], &x[2], 0.5), &[q, k, v]);
}

#[test]
fn bad_shapes_are_errors() {
    let e = |q: &[usize], k: &[usize], v: &[usize]| Tensor::attention(&randn(q, 1), &randn(k, 2), &randn(v, 3), 1.0).unwrap_err();
    // Hq not a multiple of Hkv.
    let err = e(&[1, 3, 4, 8], &[1, 2, 4, 8], &[1, 2, 4, 8]);
    let msg = err.to_string();
    assert!(matches!(err, Error::ShapeMismatch { op: "attention", .. }), "{msg}");
    assert!(msg.contains("multiple") && msg.contains("[1, 3, 4, 8]") && msg.contains("[1, 2, 4, 8]"), "{msg}");
    // Head dims differ.
    let msg = e(&[1, 2, 4, 8], &[1, 2, 4, 6], &[1, 2, 4, 6]).to_string();
    assert!(msg.contains("attention") && msg.contains("[1, 2, 4, 8]") && msg.contains("[1, 2, 4, 6]"), "{msg}");
    // More queries than keys.
    let msg = e(&[1, 2, 5, 8], &[1, 2, 4, 8], &[1, 2, 4, 8]).to_string();
    assert!(msg.contains("Tq = 5") && msg.contains("Tk = 4"), "{msg}");
    // k and v disagree, batch differs, wrong rank.
    assert!(matches!(e(&[1, 2, 4, 8], &[1, 2, 4, 8], &[1, 2, 5, 8]), Error::ShapeMismatch { .. }));
    assert!(matches!(e(&[2, 2, 4, 8], &[1, 2, 4, 8], &[1, 2, 4, 8]), Error::ShapeMismatch { .. }));
    assert!(matches!(e(&[2, 4, 8], &[2, 4, 8], &[2, 4, 8]), Error::ShapeMismatch { .. }));
    // Mixed dtypes.
    let q = randn(&[1, 1, 2, 2], 1);
    let k = randn64(&[1, 1, 2, 2], 2);
    assert!(matches!(Tensor::attention(&q, &k, &k, 1.0).unwrap_err(), Error::DTypeMismatch { op: "attention", .. }));
}
