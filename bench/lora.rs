//! Workloads b1-b3 of ../shared/baselines/README.md (LoRA linear, fp32), and a 1024^3 matmul.
//! x (4096, 1024), W (1024, 1024) frozen, r = 16, s = 2; the backward is seeded with a fixed
//! random dY, exactly as torch_cpu_baselines.py does. Run with RAYON_NUM_THREADS=2 to match the
//! baseline's 2 threads, then compare medians with the PyTorch run from the same sitting.
//! Each workload's result is checked against an unfused composition before it is timed.

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::{autograd::backward_with, Tensor};
use std::time::Duration;

const M: usize = 4096;
const K: usize = 1024;
const N: usize = 1024;
const R: usize = 16;
const S: f64 = 2.0;

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(&b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn lora(c: &mut Criterion) {
    let x = Tensor::randn([M, K], 1.0, 1, 0).unwrap();
    let w = Tensor::randn([K, N], 1.0 / (K as f32).sqrt(), 2, 0).unwrap();
    let a = Tensor::randn([K, R], 1.0 / (K as f32).sqrt(), 3, 0).unwrap().with_grad();
    let b = Tensor::randn([R, N], 0.01, 4, 0).unwrap().with_grad();
    let gy = Tensor::randn([M, N], 1.0, 5, 0).unwrap();

    // Correctness first: the fused op against the unfused composition.
    {
        let _ng = kiln::no_grad();
        let fused = Tensor::lora(&x, &w, &a, &b, S).unwrap();
        let unfused = x.matmul(&w).unwrap().add(&x.matmul(&a).unwrap().matmul(&b).unwrap().scale(S).unwrap()).unwrap();
        let d = max_rel_diff(&fused, &unfused);
        assert!(d < 1e-5, "fused LoRA differs from the composition by {d}");
    }

    let mut g = c.benchmark_group("lora");
    g.sample_size(20).measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(1));
    g.bench_function("b1_forward", |bench| {
        bench.iter(|| {
            let _ng = kiln::no_grad();
            Tensor::lora(&x, &w, &a, &b, S).unwrap()
        })
    });
    g.bench_function("b2_fwd_bwd_grads_A_B", |bench| {
        bench.iter(|| {
            let y = Tensor::lora(&x, &w, &a, &b, S).unwrap();
            backward_with(&y, gy.clone()).unwrap()
        })
    });
    let xg = x.detach().with_grad();
    g.bench_function("b3_fwd_bwd_grads_A_B_x", |bench| {
        bench.iter(|| {
            let y = Tensor::lora(&xg, &w, &a, &b, S).unwrap();
            backward_with(&y, gy.clone()).unwrap()
        })
    });
    g.finish();
}

fn matmul(c: &mut Criterion) {
    let a = Tensor::randn([1024, 1024], 1.0, 6, 0).unwrap();
    let b = Tensor::randn([1024, 1024], 1.0, 7, 0).unwrap();
    let mut g = c.benchmark_group("matmul");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("1024x1024x1024_f32", |bench| bench.iter(|| a.matmul(&b).unwrap()));
    g.finish();
}

criterion_group!(benches, lora, matmul);
criterion_main!(benches);
