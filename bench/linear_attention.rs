//! Workload c of ../shared/baselines (README.md there): causal linear attention forward,
//! B 1, H 8, T 1024, D 64, f32, chunked (C = 64) and naive (per-step recurrence) for comparison.
//! Compare with `torch_cpu_baselines.py --only c` (its `chunked_C64`) run in the same sitting,
//! both with 2 threads: `RAYON_NUM_THREADS=2 cargo bench --bench linear_attention`.
//! Checks correctness first: the two forms must agree (relative L2 < 1e-5). Also times the
//! chunked backward alone (dq, dk, dv, ds0 from dO), for the fwd+bwd / fwd ratio.

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::backend::{self, LinAttnDims};
use kiln::{no_grad, Tensor};
use std::time::Duration;

const B: usize = 1;
const H: usize = 8;
const T: usize = 1024;
const D: usize = 64;

/// q, k, v: (B, H, T, D), normal / sqrt(D) like the torch script.
fn inputs() -> [Tensor; 3] {
    let r = |seed| Tensor::randn(vec![B, H, T, D], 1.0 / (D as f32).sqrt(), seed, 0).expect("randn");
    [r(1), r(2), r(3)]
}

fn check(q: &Tensor, k: &Tensor, v: &Tensor) {
    let run = |chunked| Tensor::linear_attention(q, k, v, None, chunked).expect("linear_attention").0.to_vec_f64().expect("to_vec");
    let (naive, chunked) = (run(false), run(true));
    let num: f64 = naive.iter().zip(&chunked).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = naive.iter().map(|a| a * a).sum();
    let err = (num / den).sqrt();
    assert!(err < 1e-5, "chunked vs naive: relative L2 error {err:e}");
    eprintln!("linear_attention: chunked vs naive relative L2 error {err:.2e}");
}

fn bench(c: &mut Criterion) {
    let _ng = no_grad();
    let [q, k, v] = inputs();
    check(&q, &k, &v);
    let mut g = c.benchmark_group("linear_attention_fwd_b1_h8_t1024_d64_f32");
    g.sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for (name, chunked) in [("chunked_c64", true), ("naive_recurrent", false)] {
        g.bench_function(name, |b| b.iter(|| Tensor::linear_attention(&q, &k, &v, None, chunked).expect("linear_attention")));
    }
    let dout = Tensor::randn(vec![B, H, T, D], 1.0, 4, 0).expect("randn");
    let (qs, ks, vs, ds) = (q.storage(), k.storage(), v.storage(), dout.storage());
    let dims = LinAttnDims { bh: B * H, t: T, dk: D, dv: D };
    g.bench_function("chunked_c64_backward", |b| {
        b.iter(|| backend::linear_attention_backward(&qs, &ks, &vs, None, &ds, dims, true).expect("backward"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
