//! Batched matmul with transposes: values against a naive triple loop, f64 gradchecks for every
//! transpose combination and for a shared (broadcast) right operand, and shape errors.
mod common;
use common::*;
use kiln::{Error, Tensor};

fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let x = if ta { a[p * m + i] } else { a[i * k + p] };
                let y = if tb { b[j * k + p] } else { b[p * n + j] };
                c[i * n + j] += x * y;
            }
        }
    }
    c
}

#[test]
fn matmul_matches_naive_for_all_transposes() {
    let (m, k, n) = (37, 65, 23);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = randn(&if ta { [k, m] } else { [m, k] }, 1);
        let b = randn(&if tb { [n, k] } else { [k, n] }, 2);
        let c = a.matmul_t(&b, ta, tb).unwrap();
        assert_eq!(c.dims(), &[m, n]);
        let want = naive(&a.to_vec_f64().unwrap(), &b.to_vec_f64().unwrap(), m, k, n, ta, tb);
        assert_close(&c.to_vec_f64().unwrap(), &want, 1e-4, 1e-4, &format!("ta={ta} tb={tb}"));
    }
}

#[test]
fn large_matmul_is_accurate() {
    // Big enough to take faer's parallel, packed path.
    let (m, k, n) = (130, 257, 129);
    let a = randn(&[m, k], 3);
    let b = randn(&[k, n], 4);
    let got = a.matmul(&b).unwrap().to_vec_f64().unwrap();
    let want = naive(&a.to_vec_f64().unwrap(), &b.to_vec_f64().unwrap(), m, k, n, false, false);
    assert!(rel_l2(&got, &want) < 1e-6, "rel l2 {}", rel_l2(&got, &want));
}

#[test]
fn threaded_blocks_match_naive_and_one_thread_bit_for_bit() {
    // Tall (split by rows) and wide (split by columns) products, in blocks of 16-multiples with
    // a short last one, on 3 threads.
    for (m, k, n, ta, tb) in [(149, 97, 83, false, false), (149, 97, 83, true, false), (149, 97, 83, false, true), (149, 97, 83, true, true), (37, 301, 211, false, false), (37, 301, 211, true, true)] {
        let a = randn(&if ta { [k, m] } else { [m, k] }, 11);
        let b = randn(&if tb { [n, k] } else { [k, n] }, 12);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| a.matmul_t(&b, ta, tb).unwrap().to_vec_f32().unwrap())
        };
        let (one, three) = (on(1), on(3));
        assert_eq!(one, three, "{m}x{k}x{n} ta={ta} tb={tb}: the result depends on the thread count");
        let want = naive(&a.to_vec_f64().unwrap(), &b.to_vec_f64().unwrap(), m, k, n, ta, tb);
        let got: Vec<f64> = three.iter().map(|&x| x as f64).collect();
        assert!(rel_l2(&got, &want) < 1e-6, "ta={ta} tb={tb}: rel l2 {}", rel_l2(&got, &want));
    }
}

#[test]
fn gradcheck_matmul_batched_and_transposed() {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = randn64(&if ta { [2, 5, 3] } else { [2, 3, 5] }, 5);
        let b = randn64(&if tb { [2, 4, 5] } else { [2, 5, 4] }, 6);
        check_grads(|x| x[0].matmul_t(&x[1], ta, tb), &[a, b]);
    }
}

#[test]
fn gradcheck_matmul_shared_weight() {
    // (B, T, K) x (K, N): the weight's gradient sums over the batch.
    let x = randn64(&[2, 3, 4], 7);
    let w = randn64(&[4, 5], 8);
    check_grads(|t| t[0].matmul(&t[1]), &[x.clone(), w.clone()]);
    let wt = randn64(&[5, 4], 9);
    check_grads(|t| t[0].matmul_t(&t[1], false, true), &[x, wt]);
}

#[test]
fn matmul_shape_errors_name_op_and_shapes() {
    let a = randn(&[3, 4], 1);
    let b = randn(&[5, 6], 2);
    let e = a.matmul(&b).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::ShapeMismatch { op: "matmul", .. }), "{msg}");
    assert!(msg.contains("[3, 4]") && msg.contains("[5, 6]"), "{msg}");
    let e = randn(&[4], 1).matmul(&randn(&[4, 2], 1)).unwrap_err();
    assert!(e.to_string().contains("matmul"), "{e}");
    let e = randn(&[2, 3, 4], 1).matmul(&randn(&[3, 4, 5], 1)).unwrap_err();
    assert!(e.to_string().contains("batch"), "{e}");
    let u = Tensor::from_vec_u32(vec![1, 2, 3, 4], [2, 2]).unwrap();
    assert!(matches!(u.matmul(&u).unwrap_err(), Error::DTypeMismatch { .. } | Error::UnsupportedDType { .. }));
}
