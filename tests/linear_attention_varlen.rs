//! Packed variable-length linear attention: outputs, final states and gradients equal running
//! `linear_attention` on each sequence alone (1-token and empty sequences, lengths around the
//! chunk of 64), both forms; f64 gradchecks through o, s_final and s0; bad cu_seqlens errors.
//! Shapes: q, k (1, H, T, Dk), v (1, H, T, Dv), states (N, H, Dk, Dv).
mod common;
use common::*;
use kiln::{backward, Error, Tensor};

/// Seeded q, k, v for (H, T, Dk, Dv) and s0 for N sequences.
fn inputs(h: usize, t: usize, dk: usize, dv: usize, n: usize, seed: u64, f64: bool) -> [Tensor; 4] {
    let r = |shape: &[usize], s: u64| if f64 { randn64(shape, s) } else { randn(shape, s) };
    let q = r(&[1, h, t, dk], seed).scale(1.0 / (dk as f64).sqrt()).unwrap();
    [q, r(&[1, h, t, dk], seed + 1), r(&[1, h, t, dv], seed + 2), r(&[n, h, dk, dv], seed + 3)]
}

/// Offsets of sequences with these lengths.
fn offsets(lens: &[usize]) -> Vec<u32> {
    let mut cu = vec![0u32];
    for &l in lens {
        cu.push(cu.last().unwrap() + l as u32);
    }
    cu
}

/// Per-sequence reference: run the fixed-length op on each segment, concatenated back along T
/// (o) and along N (s_final).
fn per_sequence(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>, cu: &[u32], chunked: bool) -> (Tensor, Tensor) {
    let (mut os, mut ss) = (vec![], vec![]);
    for n in 0..cu.len() - 1 {
        let (t0, len) = (cu[n] as usize, (cu[n + 1] - cu[n]) as usize);
        let seg = |x: &Tensor| x.narrow(2, t0, len).unwrap();
        let s0n = s0.map(|s| s.narrow(0, n, 1).unwrap());
        let (o, s) = Tensor::linear_attention(&seg(q), &seg(k), &seg(v), s0n.as_ref(), chunked).unwrap();
        if len > 0 {
            os.push(o);
        }
        ss.push(s);
    }
    (Tensor::concat(&os, 2).unwrap(), Tensor::concat(&ss, 0).unwrap())
}

const LENS: [&[usize]; 5] = [&[1], &[5, 1, 9], &[63, 1, 64, 65], &[130, 0, 3], &[1, 1, 1, 70]];

#[test]
fn varlen_equals_each_sequence_alone() {
    for (li, lens) in LENS.iter().enumerate() {
        let cu = offsets(lens);
        let t = *cu.last().unwrap() as usize;
        for (dk, dv) in [(5, 7), (60, 64)] {
            let [q, k, v, s0] = inputs(2, t, dk, dv, lens.len(), 100 + li as u64, true);
            for with_s0 in [false, true] {
                let s0 = with_s0.then_some(&s0);
                for chunked in [false, true] {
                    let (o, s) = Tensor::linear_attention_varlen(&q, &k, &v, s0, &cu, chunked).unwrap();
                    assert_eq!((o.dims(), s.dims()), (&[1, 2, t, dv][..], &[lens.len(), 2, dk, dv][..]));
                    let (wo, ws) = per_sequence(&q, &k, &v, s0, &cu, chunked);
                    let what = format!("lens={lens:?} Dk={dk} Dv={dv} s0={with_s0} chunked={chunked}");
                    assert_tensors_close(&o, &wo, 1e-12, 1e-10, &format!("o, {what}"));
                    assert_tensors_close(&s, &ws, 1e-12, 1e-10, &format!("s_final, {what}"));
                }
            }
        }
    }
}

#[test]
fn varlen_f32_matches_f64() {
    let cu = offsets(&[70, 1, 33]);
    let [q, k, v, s0] = inputs(2, 104, 8, 6, 3, 7, false);
    let up = |x: &Tensor| x.to_dtype(kiln::DType::F64).unwrap();
    let (o, s) = Tensor::linear_attention_varlen(&q, &k, &v, Some(&s0), &cu, true).unwrap();
    let (wo, ws) = Tensor::linear_attention_varlen(&up(&q), &up(&k), &up(&v), Some(&up(&s0)), &cu, false).unwrap();
    assert!(rel_l2(&o.to_vec_f64().unwrap(), &wo.to_vec_f64().unwrap()) < 1e-5);
    assert!(rel_l2(&s.to_vec_f64().unwrap(), &ws.to_vec_f64().unwrap()) < 1e-5);
}

/// o and s_final flattened into one vector, so a gradcheck covers both outputs.
fn both(x: &[Tensor], cu: &[u32], chunked: bool) -> kiln::Result<Tensor> {
    let (o, s) = Tensor::linear_attention_varlen(&x[0], &x[1], &x[2], x.get(3), cu, chunked)?;
    let (no, ns) = (o.elem_count(), s.elem_count());
    Tensor::concat(&[o.reshape(vec![no])?, s.reshape(vec![ns])?], 0)
}

#[test]
fn gradcheck_varlen_small() {
    // Every element checked; a 1-token sequence between two longer ones.
    let cu = offsets(&[3, 1, 4]);
    for chunked in [false, true] {
        let [q, k, v, s0] = inputs(2, 8, 3, 2, 3, 21, true);
        check_grads(|x| both(x, &cu, chunked), &[q.clone(), k.clone(), v.clone(), s0]);
        check_grads(|x| both(x, &cu, chunked), &[q, k, v]);
    }
}

#[test]
fn gradcheck_varlen_across_chunks_output_and_state_alone() {
    // 66 + 1 + 70 rows: sequences cross chunk boundaries; directional checks; each output alone.
    let cu = offsets(&[66, 1, 70]);
    let [q, k, v, s0] = inputs(1, 137, 3, 2, 3, 31, true);
    let ins = [q, k, v, s0];
    check_grads(|x| both(x, &cu, true), &ins);
    check_grads(|x| Ok(Tensor::linear_attention_varlen(&x[0], &x[1], &x[2], Some(&x[3]), &cu, true)?.0), &ins);
    check_grads(|x| Ok(Tensor::linear_attention_varlen(&x[0], &x[1], &x[2], Some(&x[3]), &cu, true)?.1), &ins);
}

#[test]
fn varlen_gradients_equal_per_sequence_gradients() {
    let cu = offsets(&[65, 1, 0, 64, 2]);
    let [q, k, v, s0] = inputs(2, 132, 5, 4, 5, 41, true);
    let ins: Vec<Tensor> = [q, k, v, s0].into_iter().map(|t| t.with_grad()).collect();
    let (r1, r2) = (randn64(&[1, 2, 132, 4], 1), randn64(&[5, 2, 5, 4], 2));
    let loss = |o: &Tensor, s: &Tensor| o.mul(&r1).unwrap().sum_all().unwrap().add(&s.mul(&r2).unwrap().sum_all().unwrap()).unwrap();
    let (o, s) = Tensor::linear_attention_varlen(&ins[0], &ins[1], &ins[2], Some(&ins[3]), &cu, true).unwrap();
    let g = backward(&loss(&o, &s)).unwrap();
    let (wo, ws) = per_sequence(&ins[0], &ins[1], &ins[2], Some(&ins[3]), &cu, false);
    let w = backward(&loss(&wo, &ws)).unwrap();
    for (t, name) in ins.iter().zip(["dq", "dk", "dv", "ds0"]) {
        assert_tensors_close(g.get(t).unwrap(), w.get(t).unwrap(), 1e-11, 1e-9, name);
    }
}

#[test]
fn bad_cu_seqlens_are_named() {
    let [q, k, v, s0] = inputs(1, 10, 3, 2, 2, 51, false);
    let err = |cu: &[u32]| Tensor::linear_attention_varlen(&q, &k, &v, None, cu, true).unwrap_err().to_string();
    let e = err(&[1, 4, 10]);
    assert!(e.contains("linear_attention_varlen") && e.contains("must start at 0"), "{e}");
    let e = err(&[0, 6, 4, 10]);
    assert!(e.contains("must not decrease"), "{e}");
    let e = err(&[0, 4, 9]);
    assert!(e.contains("must end at T = 10"), "{e}");
    let e = err(&[]);
    assert!(e.contains("cu_seqlens"), "{e}");
    // s0 must have one state per sequence.
    let e = Tensor::linear_attention_varlen(&q, &k, &v, Some(&s0), &[0, 2, 5, 10], true).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "linear_attention_varlen", .. }), "{e}");
    // Packed sequences need batch 1.
    let q2 = randn(&[2, 1, 5, 3], 1);
    let e = Tensor::linear_attention_varlen(&q2, &q2, &randn(&[2, 1, 5, 2], 2), None, &[0, 5], true).unwrap_err();
    assert!(e.to_string().contains("batch 1"), "{e}");
}
