//! Causal linear attention: the naive form against an independent f64 quadratic-form reference,
//! the chunked form against the naive one (f64 tight, f32 by relative L2) for lengths around the
//! chunk size and odd head dims, final states, f64 gradchecks of both forms (through s0 and
//! s_final too), chunked vs naive gradients, and shape errors (Tensor and backend level).
//! Shapes: q, k (B, H, T, Dk), v (B, H, T, Dv), states (B, H, Dk, Dv).
mod common;
use common::*;
use kiln::{backward, DType, Tensor};

const TS: [usize; 7] = [1, 15, 63, 64, 65, 130, 257];
const DIMS: [(usize, usize); 3] = [(60, 96), (1, 3), (64, 64)];

/// o[t] = q_t S0 + sum_{s <= t} (q_t . k_s) v_s and s_final = S0 + sum_s k_s^T v_s, written as
/// plain loops in f64 (the quadratic form, not the recurrence under test).
#[allow(clippy::too_many_arguments)]
fn reference(q: &[f64], k: &[f64], v: &[f64], s0: Option<&[f64]>, bh: usize, t: usize, dk: usize, dv: usize) -> (Vec<f64>, Vec<f64>) {
    let mut o = vec![0.0; bh * t * dv];
    let mut s = s0.map_or_else(|| vec![0.0; bh * dk * dv], |s| s.to_vec());
    for h in 0..bh {
        let (q, k, v) = (&q[h * t * dk..], &k[h * t * dk..], &v[h * t * dv..]);
        let s = &mut s[h * dk * dv..(h + 1) * dk * dv];
        for i in 0..t {
            for j in 0..dv {
                let mut acc = 0.0;
                for a in 0..dk {
                    acc += q[i * dk + a] * s[a * dv + j];
                }
                for r in 0..=i {
                    let dot: f64 = (0..dk).map(|a| q[i * dk + a] * k[r * dk + a]).sum();
                    acc += dot * v[r * dv + j];
                }
                o[h * t * dv + i * dv + j] = acc;
            }
        }
        for r in 0..t {
            for a in 0..dk {
                for j in 0..dv {
                    s[a * dv + j] += k[r * dk + a] * v[r * dv + j];
                }
            }
        }
    }
    (o, s)
}

/// Seeded inputs (q, k, v, s0) for (B, H, T, Dk, Dv), scaled like real use (q by 1/sqrt(Dk)).
fn inputs(b: usize, h: usize, t: usize, dk: usize, dv: usize, seed: u64, f64: bool) -> [Tensor; 4] {
    let r = |shape: &[usize], s: u64| if f64 { randn64(shape, s) } else { randn(shape, s) };
    let q = r(&[b, h, t, dk], seed).scale(1.0 / (dk as f64).sqrt()).unwrap();
    [q, r(&[b, h, t, dk], seed + 1), r(&[b, h, t, dv], seed + 2), r(&[b, h, dk, dv], seed + 3)]
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

#[test]
fn naive_and_chunked_match_f64_reference() {
    for (t, dk, dv) in [(1, 4, 3), (15, 5, 7), (70, 6, 3), (130, 1, 3)] {
        for with_s0 in [false, true] {
            let [q, k, v, s0] = inputs(2, 1, t, dk, dv, 10 + t as u64, true);
            let s0 = with_s0.then_some(&s0);
            let (want_o, want_s) = reference(&v64(&q), &v64(&k), &v64(&v), s0.map(v64).as_deref(), 2, t, dk, dv);
            for chunked in [false, true] {
                let (o, s) = Tensor::linear_attention(&q, &k, &v, s0, chunked).unwrap();
                assert_eq!((o.dims(), s.dims()), (&[2, 1, t, dv][..], &[2, 1, dk, dv][..]));
                let what = format!("T={t} Dk={dk} Dv={dv} s0={with_s0} chunked={chunked}");
                assert_close(&v64(&o), &want_o, 1e-12, 1e-10, &format!("o, {what}"));
                assert_close(&v64(&s), &want_s, 1e-12, 1e-10, &format!("s_final, {what}"));
            }
        }
    }
}

#[test]
fn f32_forms_match_f64_reference() {
    let (t, dk, dv) = (130, 8, 5);
    let [q, k, v, s0] = inputs(1, 2, t, dk, dv, 3, false);
    let (want_o, want_s) = reference(&v64(&q), &v64(&k), &v64(&v), Some(&v64(&s0)), 2, t, dk, dv);
    for chunked in [false, true] {
        let (o, s) = Tensor::linear_attention(&q, &k, &v, Some(&s0), chunked).unwrap();
        assert_eq!(o.dtype(), DType::F32);
        let (eo, es) = (rel_l2(&v64(&o), &want_o), rel_l2(&v64(&s), &want_s));
        assert!(eo < 1e-5 && es < 1e-5, "chunked={chunked}: rel l2 o {eo:e}, s_final {es:e}");
    }
}

#[test]
fn chunked_matches_naive_across_lengths_and_dims() {
    for (dk, dv) in DIMS {
        for t in TS {
            for (with_s0, is_f64) in [(false, true), (true, true), (false, false), (true, false)] {
                let [q, k, v, s0] = inputs(1, 2, t, dk, dv, 100 + t as u64 + dk as u64, is_f64);
                let s0 = with_s0.then_some(&s0);
                let (on, sn) = Tensor::linear_attention(&q, &k, &v, s0, false).unwrap();
                let (oc, sc) = Tensor::linear_attention(&q, &k, &v, s0, true).unwrap();
                let what = format!("T={t} Dk={dk} Dv={dv} s0={with_s0} f64={is_f64}");
                if is_f64 {
                    assert_close(&v64(&oc), &v64(&on), 1e-12, 1e-10, &format!("o, {what}"));
                    assert_close(&v64(&sc), &v64(&sn), 1e-12, 1e-10, &format!("s_final, {what}"));
                } else {
                    let (eo, es) = (rel_l2(&v64(&oc), &v64(&on)), rel_l2(&v64(&sc), &v64(&sn)));
                    assert!(eo < 1e-5 && es < 1e-5, "{what}: rel l2 o {eo:e}, s_final {es:e}");
                }
            }
        }
    }
}

#[test]
fn the_state_carries_across_calls() {
    // Running [0, T1) then [T1, T) from the first call's final state equals one call over [0, T).
    let (t, t1, dk, dv) = (130, 70, 6, 5);
    let [q, k, v, s0] = inputs(1, 2, t, dk, dv, 21, true);
    for chunked in [false, true] {
        let (o, s) = Tensor::linear_attention(&q, &k, &v, Some(&s0), chunked).unwrap();
        let part = |x: &Tensor, a: usize, n: usize| x.narrow(2, a, n).unwrap();
        let (o1, s1) = Tensor::linear_attention(&part(&q, 0, t1), &part(&k, 0, t1), &part(&v, 0, t1), Some(&s0), chunked).unwrap();
        let (o2, s2) = Tensor::linear_attention(&part(&q, t1, t - t1), &part(&k, t1, t - t1), &part(&v, t1, t - t1), Some(&s1), chunked).unwrap();
        let joined = Tensor::concat(&[o1, o2], 2).unwrap();
        assert_close(&v64(&joined), &v64(&o), 1e-12, 1e-10, &format!("o, chunked={chunked}"));
        assert_close(&v64(&s2), &v64(&s), 1e-12, 1e-10, &format!("s_final, chunked={chunked}"));
    }
}

#[test]
fn empty_sequence_returns_the_initial_state() {
    let [q, k, v, s0] = inputs(1, 2, 0, 3, 4, 5, true);
    for chunked in [false, true] {
        let (o, s) = Tensor::linear_attention(&q, &k, &v, Some(&s0), chunked).unwrap();
        assert_eq!(o.dims(), &[1, 2, 0, 4]);
        assert_close(&v64(&s), &v64(&s0), 0.0, 0.0, "s_final");
    }
}

/// o and s_final flattened into one vector, so gradcheck's random weighting covers both.
fn both_outputs(x: &[Tensor], chunked: bool) -> kiln::Result<Tensor> {
    let (o, s) = Tensor::linear_attention(&x[0], &x[1], &x[2], x.get(3), chunked)?;
    let (no, ns) = (o.elem_count(), s.elem_count());
    Tensor::concat(&[o.reshape(vec![no])?, s.reshape(vec![ns])?], 0)
}

#[test]
fn gradcheck_small_elementwise() {
    // Every element checked (<= 256 per input); T = 5 sits inside one chunk.
    for chunked in [false, true] {
        let [q, k, v, s0] = inputs(1, 2, 5, 3, 4, 31, true);
        check_grads(|x| both_outputs(x, chunked), &[q.clone(), k.clone(), v.clone(), s0]);
        check_grads(|x| both_outputs(x, chunked), &[q, k, v]);
    }
}

#[test]
fn gradcheck_across_chunk_boundaries() {
    // T = 130: two full chunks and a partial one; directional checks (inputs > 256 elements).
    for chunked in [false, true] {
        let [q, k, v, s0] = inputs(1, 2, 130, 3, 2, 41, true);
        check_grads(|x| both_outputs(x, chunked), &[q.clone(), k.clone(), v.clone(), s0]);
    }
}

#[test]
fn gradcheck_output_only_and_state_only() {
    // Each path on its own, so one cannot hide an error in the other.
    let [q, k, v, s0] = inputs(1, 1, 67, 2, 3, 51, true);
    let ins = [q, k, v, s0];
    check_grads(|x| Ok(Tensor::linear_attention(&x[0], &x[1], &x[2], Some(&x[3]), true)?.0), &ins);
    check_grads(|x| Ok(Tensor::linear_attention(&x[0], &x[1], &x[2], Some(&x[3]), true)?.1), &ins);
}

#[test]
fn chunked_gradients_match_naive() {
    // Larger than a gradcheck affords: compare the two backward passes with each other in f64.
    for (t, (dk, dv)) in [(257, (60, 96)), (65, (1, 3)), (130, (64, 64)), (15, (5, 2))] {
        let [q, k, v, s0] = inputs(1, 2, t, dk, dv, 61 + t as u64, true);
        let r1 = randn64(&[1, 2, t, dv], 7);
        let r2 = randn64(&[1, 2, dk, dv], 8);
        let grads = |chunked: bool| {
            let xs: Vec<Tensor> = [&q, &k, &v, &s0].iter().map(|x| x.detach().with_grad()).collect();
            let (o, s) = Tensor::linear_attention(&xs[0], &xs[1], &xs[2], Some(&xs[3]), chunked).unwrap();
            let loss = o.mul(&r1).unwrap().sum_all().unwrap().add(&s.mul(&r2).unwrap().sum_all().unwrap()).unwrap();
            let g = backward(&loss).unwrap();
            xs.iter().map(|x| v64(g.get(x).expect("a gradient for every input"))).collect::<Vec<_>>()
        };
        let (gn, gc) = (grads(false), grads(true));
        for (i, name) in ["dq", "dk", "dv", "ds0"].iter().enumerate() {
            assert_close(&gc[i], &gn[i], 1e-10, 1e-9, &format!("{name}, T={t} Dk={dk} Dv={dv}"));
        }
    }
}

#[test]
fn f32_chunked_gradients_are_accurate() {
    let [q, k, v, s0] = inputs(1, 2, 130, 16, 8, 71, false);
    let r1 = randn(&[1, 2, 130, 8], 9);
    let grads = |x64: bool, chunked: bool| {
        let xs: Vec<Tensor> = [&q, &k, &v, &s0].iter().map(|x| if x64 { x.to_dtype(DType::F64).unwrap() } else { (*x).clone() }.detach().with_grad()).collect();
        let (o, _) = Tensor::linear_attention(&xs[0], &xs[1], &xs[2], Some(&xs[3]), chunked).unwrap();
        let r = r1.to_dtype(o.dtype()).unwrap();
        let g = backward(&o.mul(&r).unwrap().sum_all().unwrap()).unwrap();
        xs.iter().map(|x| v64(g.get(x).unwrap())).collect::<Vec<_>>()
    };
    let (want, got) = (grads(true, false), grads(false, true));
    for (i, name) in ["dq", "dk", "dv", "ds0"].iter().enumerate() {
        let e = rel_l2(&got[i], &want[i]);
        assert!(e < 1e-5, "{name}: rel l2 {e:e}");
    }
}

fn err_of(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>) -> String {
    match Tensor::linear_attention(q, k, v, s0, true) {
        Ok(_) => panic!("expected an error for q {} k {} v {}", q.shape(), k.shape(), v.shape()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn shape_errors_name_the_op_and_shapes() {
    let [q, k, v, s0] = inputs(1, 2, 10, 3, 4, 81, false);
    let short_k = randn(&[1, 2, 9, 3], 1);
    let e = err_of(&q, &short_k, &v, None);
    assert!(e.contains("linear_attention") && e.contains("[1, 2, 10, 3]") && e.contains("[1, 2, 9, 3]"), "{e}");

    let short_v = randn(&[1, 2, 9, 4], 2);
    let e = err_of(&q, &k, &short_v, None);
    assert!(e.contains("linear_attention") && e.contains("[1, 2, 9, 4]"), "{e}");

    let rank3 = randn(&[2, 10, 3], 3);
    let e = err_of(&rank3, &rank3, &v, None);
    assert!(e.contains("linear_attention") && e.contains("[2, 10, 3]"), "{e}");

    let bad_s0 = randn(&[1, 2, 4, 3], 4);
    let e = err_of(&q, &k, &v, Some(&bad_s0));
    assert!(e.contains("linear_attention") && e.contains("[1, 2, 4, 3]") && e.contains("[1, 2, 3, 4]"), "{e}");

    let e = err_of(&q, &k, &v.to_dtype(DType::F64).unwrap(), Some(&s0));
    assert!(e.contains("linear_attention") && e.contains("F64"), "{e}");
}

#[test]
fn backend_refuses_buffers_of_the_wrong_length() {
    // The backend is public: dims that disagree with the buffers are an error, not a panic.
    use kiln::backend::{linear_attention, linear_attention_backward, LinAttnDims};
    let [q, k, v, s0] = inputs(1, 2, 10, 3, 4, 91, false);
    let (qs, ks, vs, ss) = (q.storage(), k.storage(), v.storage(), s0.storage());
    let wrong_t = LinAttnDims { bh: 2, t: 11, dk: 3, dv: 4 };
    let e = linear_attention(&qs, &ks, &vs, None, wrong_t, true).expect_err("an error").to_string();
    assert!(e.contains("linear_attention"), "{e}");
    let wrong_dv = LinAttnDims { bh: 2, t: 10, dk: 3, dv: 5 };
    let e = linear_attention_backward(&qs, &ks, &vs, Some(&ss), &vs, wrong_dv, false).expect_err("an error").to_string();
    assert!(e.contains("linear_attention_backward"), "{e}");
    let right = LinAttnDims { bh: 2, t: 10, dk: 3, dv: 4 };
    let e = linear_attention(&qs, &ks, &vs, Some(&qs), right, true).expect_err("an error").to_string();
    assert!(e.contains("initial state"), "{e}");
}

/// The unfused composition (batched matmuls, a mask, a triangular prefix: the bench's baseline)
/// against the same f64 reference, T around the chunk size, with and without s0.
#[test]
fn unfused_composition_matches_f64_reference() {
    for (b, h, t, dk, dv) in [(2, 1, 1, 4, 3), (1, 2, 63, 5, 7), (2, 1, 64, 3, 3), (1, 2, 65, 6, 2), (1, 1, 130, 1, 3)] {
        for with_s0 in [false, true] {
            let [q, k, v, s0] = inputs(b, h, t, dk, dv, 40 + t as u64, true);
            let s0 = with_s0.then_some(&s0);
            let (want, _) = reference(&v64(&q), &v64(&k), &v64(&v), s0.map(v64).as_deref(), b * h, t, dk, dv);
            let o = Tensor::linear_attention_unfused(&q, &k, &v, s0).unwrap();
            assert_eq!(o.dims(), &[b, h, t, dv][..]);
            assert_close(&v64(&o), &want, 1e-12, 1e-10, &format!("unfused o, T={t} Dk={dk} Dv={dv} s0={with_s0}"));
        }
    }
    // its gradients (through kiln's general ops) in f64, across a chunk boundary, with s0
    let [q, k, v, s0] = inputs(1, 1, 67, 2, 3, 61, true);
    check_grads(|x| Tensor::linear_attention_unfused(&x[0], &x[1], &x[2], x.get(3)), &[q, k, v, s0]);

    let [q, k, v, s0] = inputs(1, 1, 8, 4, 3, 1, false);
    let e = Tensor::linear_attention_unfused(&q, &k, &v.narrow(2, 0, 7).unwrap(), None).unwrap_err().to_string();
    assert!(e.contains("linear_attention_unfused") && e.contains("must agree"), "{e}");
    let e = Tensor::linear_attention_unfused(&q, &k, &v, Some(&s0.narrow(3, 0, 2).unwrap())).unwrap_err().to_string();
    assert!(e.contains("s0"), "{e}");
}
