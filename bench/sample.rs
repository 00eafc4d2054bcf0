//! Workload d of ../shared/baselines (README.md there): top-p 0.9 sampling of logits [256, 32000]
//! f32, logits = 3 * standard normal, temperature 1. PyTorch's reference is softmax + sort +
//! cumsum + multinomial; kiln's sampler never sorts (src/sample/). Compare with
//! `torch_cpu_baselines.py --only d` (its `sort_based_top_p_0.9`) run in the same sitting, both
//! with 2 threads: `RAYON_NUM_THREADS=2 cargo bench --bench sample`.
//! Checks correctness first: on a slice of rows, every drawn token lies in the nucleus computed
//! here by sorting in f64. Also times greedy, top-k 50 and a top-k 50 + top-p 0.9 + min-p combo.

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::sample::{sample, SamplingParams};
use kiln::Tensor;
use std::time::Duration;

const B: usize = 256;
const V: usize = 32000;

/// The nucleus of one row by sorting (f64 softmax): ids whose preceding mass is < p.
fn nucleus(x: &[f32], p: f64) -> Vec<bool> {
    let m = x.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let e: Vec<f64> = x.iter().map(|&xi| (xi as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| e[b].total_cmp(&e[a]));
    let mut keep = vec![false; x.len()];
    let mut before = 0.0;
    for &i in &order {
        if before >= p * s {
            break;
        }
        keep[i] = true;
        before += e[i];
    }
    keep
}

fn check(logits: &[f32], params: &[SamplingParams], rows: &[u32]) {
    let mut sizes = 0usize;
    for step in 0..4 {
        let tokens = sample(logits, V, params, 7, rows, step).expect("sample");
        for r in 0..16 {
            let keep = nucleus(&logits[r * V..(r + 1) * V], 0.9);
            let t = tokens[r] as usize;
            assert!(t < V && keep[t], "row {r} step {step}: token {t} is outside the top-p 0.9 nucleus");
            sizes += keep.iter().filter(|&&k| k).count();
        }
    }
    eprintln!("sample: drawn tokens lie in the sorted-reference nucleus (mean size {})", sizes / 64);
}

fn bench(c: &mut Criterion) {
    let logits = Tensor::randn(vec![B, V], 3.0, 0, 0).expect("randn").to_vec_f32().expect("to_vec");
    let rows: Vec<u32> = (0..B as u32).collect();
    let top_p = vec![SamplingParams::default().with_top_p(0.9); B];
    check(&logits, &top_p, &rows);

    let mut g = c.benchmark_group("sample_b256_v32000_f32");
    g.sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    let combo = SamplingParams::default().with_top_k(50).with_top_p(0.9).with_min_p(0.05);
    let cases = [
        ("top_p_0.9", SamplingParams::default().with_top_p(0.9)),
        ("temperature_only", SamplingParams::default()),
        ("greedy", SamplingParams::greedy()),
        ("top_k_50", SamplingParams::default().with_top_k(50)),
        ("top_k_50_top_p_0.9_min_p_0.05", combo),
    ];
    for (name, p) in cases {
        let params = vec![p; B];
        let mut step = 0u32;
        g.bench_function(name, |b| {
            b.iter(|| {
                step = step.wrapping_add(1); // a fresh draw each iteration
                sample(&logits, V, &params, 0, &rows, step).expect("sample")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
